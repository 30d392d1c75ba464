# The option declarations of services.loft, one file for the NixOS (module.nix), nix-darwin
# (darwin-module.nix) and home-manager (home-manager-module.nix) modules, so one attribute set of
# per-cache settings moves between the three unchanged.
#
# `cache` is what one uploader needs (where the cache is, its secrets, how it uploads and prunes);
# `services.loft` itself holds one on NixOS and nix-darwin (the default instance, whose names and
# defaults are the original Loft's), and every entry of `services.loft.caches.<name>` holds one on
# all three, enabled by being defined. A secret is always the path of a file: the rendered loft.toml
# lies in the world-readable Nix store and only names it (config-toml.nix).
{ lib, settingsFormat }:
let
  inherit (lib)
    literalExpression
    mkOption
    types
    ;

  secretFile =
    what: example:
    mkOption {
      type = types.nullOr types.path;
      default = null;
      inherit example;
      description = ''
        File holding ${what}; it must not be in the Nix store. On NixOS the service gets it as a
        systemd credential (LoadCredential=), so it may be readable by root only; under nix-darwin
        the root daemon reads it in place (keep it root-only, mode 0600); under home-manager the
        user's service reads it in place (mode 0600, owned by the user).
      '';
    };

  headersOption =
    where:
    mkOption {
      type = types.attrsOf types.str;
      default = { };
      example = {
        "CF-Access-Client-Id" = "0123.access";
      };
      description = ''
        HTTP headers added to every ${where} request (e.g. for Cloudflare Access). The values are
        written to the Nix store, which every local user can read: use the *File variant for secrets.
      '';
    };

  headerFilesOption =
    where:
    mkOption {
      type = types.attrsOf types.path;
      default = { };
      example = {
        "CF-Access-Client-Secret" = "/run/secrets/cf-access-secret";
      };
      description = ''
        HTTP headers added to every ${where} request, each value read from a file (a secret, handled
        like the other secret files). A header set here wins over the inline one of the same name.
      '';
    };

  # A default computed from an entry's name is shown to users as this text.
  documented = text: if text == null then { } else { defaultText = literalExpression text; };

  bool =
    default: description:
    mkOption {
      type = types.bool;
      inherit default description;
    };
in
rec {
  # One uploader's options. The defaults of its state directory and database differ between the
  # default instance (/var/lib/loft, the original Loft's) and the entries of `caches` (one
  # directory each); `*Text` documents a default computed from the entry's name.
  cache =
    {
      stateDirectory,
      localCachePath,
      stateDirectoryText ? null,
      localCachePathText ? null,
    }:
    {
      debug = bool false "Log at debug level (`loft --debug`).";

      stateDirectory = mkOption {
        type = types.str;
        default = stateDirectory;
        description = ''
          The directory this instance writes (its database and queue). No two instances may share
          one. On NixOS it must be under /var/lib (systemd's StateDirectory= creates it for the
          service's user); elsewhere loft creates it at start.
        '';
      }
      // documented stateDirectoryText;

      s3 = {
        bucket = mkOption {
          type = types.str;
          example = "nix-cache";
          description = "Name of the bucket that holds the binary cache (unused when http.url is set).";
        };
        region = mkOption {
          type = types.str;
          default = "us-east-1";
          description = "Region of the bucket.";
        };
        endpoint = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "http://172.16.1.50:3900";
          description = "URL of the S3 API (Garage, MinIO, R2, ...); null for AWS S3 itself.";
        };
        accessKeyFile = secretFile "the S3 access key ID" "/run/secrets/loft-s3-access-key";
        secretKeyFile = secretFile "the S3 secret access key" "/run/secrets/loft-s3-secret-key";
        sessionTokenFile = secretFile "an S3 session token (temporary credentials)" "/run/secrets/loft-s3-session-token";
        extraHeaders = headersOption "S3";
        extraHeadersFile = headerFilesOption "S3";
      };

      http = {
        url = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "https://cache.example.org/main";
          description = ''
            Base URL of a writable HTTP binary cache (PUT, as `nix copy --to http://...` writes).
            When set, loft.toml gets an [http] table instead of [s3], and the s3.* options are unused.
          '';
        };
        user = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "User name for HTTP Basic authentication (with http.passwordFile).";
        };
        passwordFile = secretFile "the HTTP Basic password" "/run/secrets/loft-http-password";
        tokenFile = secretFile "a bearer token for the HTTP cache" "/run/secrets/loft-http-token";
        netrcFile = secretFile "netrc credentials for the HTTP cache (as Nix's netrc-file)" "/run/secrets/loft-netrc";
        extraHeaders = headersOption "HTTP";
        extraHeadersFile = headerFilesOption "HTTP";
        caFile = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "CA bundle that signs the cache's TLS certificate (public: may be in the store).";
        };
        clientCertFile = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "TLS client certificate for mutual TLS (public: may be in the store).";
        };
        clientKeyFile = secretFile "the TLS client certificate's private key" "/run/secrets/loft-client-key";
        maxAttempts = mkOption {
          type = types.nullOr (types.ints.between 1 20);
          default = null;
          description = "Tries per HTTP request (loft's default, 6, when null).";
        };
        requestTimeoutSecs = mkOption {
          type = types.nullOr (types.ints.between 1 3600);
          default = null;
          description = "Seconds a request may go without a byte moving before it is retried (loft's default, 300, when null).";
        };
      };

      localCachePath = mkOption {
        type = types.path;
        default = localCachePath;
        description = ''
          loft's SQLite database: which paths the cache holds, and the upload queue. Must be inside
          stateDirectory, the only directory the service may write.
        '';
      }
      // documented localCachePathText;

      uploadThreads = mkOption {
        type = types.ints.between 1 256;
        default = 12;
        description = "How many store paths are uploaded at once.";
      };

      scanOnStartup = bool true "At the first start, check every valid store path and upload what the cache lacks.";
      populateCacheOnStartup = bool false "At start, fill the local database from the cache's listing when it is empty.";

      compression = mkOption {
        type = types.enum [
          "zstd"
          "xz"
          "none"
        ];
        default = "zstd";
        description = "Compression of the uploaded NARs.";
      };

      useDiskForLargeNars = bool true "Accepted for compatibility with the original Loft; loft streams every NAR.";

      largeNarThresholdMb = mkOption {
        type = types.ints.between 1 1048576;
        default = 1024;
        description = "Accepted for compatibility with the original Loft; loft streams every NAR.";
      };

      signingKeyPath = secretFile "the Nix signing key (`nix key generate-secret`)" "/run/secrets/nix-signing-key";

      signingKeyName = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "cache.example.org-1";
        description = ''
          Expected name of the signing key. The name is part of the key file; when set, loft refuses
          to start if the file's name differs.
        '';
      };

      skipSignedByKeys = mkOption {
        type = types.listOf types.str;
        default = [
          "cache.nixos.org-1"
          "nix-community.cachix.org-1"
        ];
        description = "Paths signed by one of these keys are not uploaded (their caches serve them).";
      };

      # loft's defaults; config-toml.nix writes them only when changed (see there).
      uploadLogs = bool true "Upload the build log of each uploaded derivation output (`log/<drv>`).";
      writeNarListing = bool false "Write a `.ls` file listing each NAR's contents (for `nix store ls`).";
      indexDebugInfo = bool false "Index ELF debug info files (`debuginfo/<build-id>`) for debuginfod clients.";
      logCompression = mkOption {
        type = types.enum [
          "none"
          "br"
          "zstd"
          "gzip"
        ];
        default = "none";
        description = "Content-Encoding of uploaded build logs, as Nix's `log-compression`; Nix >= 2.34 decodes br, zstd and gzip. S3 caches only.";
      };
      memoryBudget = mkOption {
        # loft checks the size itself and names the key in one line when it is wrong.
        type = types.nullOr types.str;
        default = null;
        example = "192MiB";
        description = ''
          `memory_budget`: the memory loft buffers on purpose, all uploads together (zstd frames,
          NAR reads, S3 parts), as a size with a unit. `null` keeps loft's default (48 MiB and 8 MiB
          per core up to 16 cores, 64 MiB on 2; grown to fit a large `part_size_mb`).
          `loft --status` shows it with what is in use and the peak.
        '';
      };
      freshStartAfterUploads = mkOption {
        type = types.nullOr (types.ints.between 0 1000000000);
        default = null;
        example = 0;
        description = ''
          `fresh_start_after_uploads`: once idle, with nothing queued, after this many uploads since
          it started, the daemon executes itself afresh (same PID) to give back the memory a long
          drain leaves behind. `0`: never. `null` keeps loft's default (5000).
        '';
      };

      pruning = {
        enable = bool false "Delete old paths from the cache on a schedule (whole closures only).";
        schedule = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "00:00";
          description = ''Interval ("24h", "7d") or daily local time ("00:00") of the pruning runs.'';
        };
        retentionDays = mkOption {
          type = types.ints.between 1 36500;
          default = 30;
          description = "Paths not uploaded or used for this many days are deleted.";
        };
        maxSizeGb = mkOption {
          type = types.nullOr (types.ints.between 1 1000000);
          default = null;
          description = "When the cache is larger than this, the oldest paths go first.";
        };
        targetPercentage = mkOption {
          type = types.nullOr (types.ints.between 1 99);
          default = null;
          description = "Pruning for size stops at this percentage of maxSizeGb (loft's default: 80).";
        };
      };

      extraConfig = mkOption {
        type = settingsFormat.type;
        default = { };
        example = {
          loft.compression_level = 9;
          s3.prefix = "caches/main";
        };
        description = ''
          Merged into loft.toml over the options above (a null value removes a key). It lands in the
          world-readable Nix store: no secrets here.
        '';
      };
    };

  # services.loft.caches: `entry name config` gives the defaults of one entry (see `cache`).
  caches =
    { entry, where }:
    mkOption {
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = cache (entry name config);
          }
        )
      );
      default = { };
      example = literalExpression ''
        {
          main = { s3.bucket = "nix-cache"; signingKeyPath = "/run/secrets/main-key"; };
          team = { http.url = "https://cache.example.org/team"; http.tokenFile = "/run/secrets/team-token"; };
        }
      '';
      description = ''
        More caches, each uploaded to by its own ${where} with its own loft.toml and its own
        secret files (one cache's secrets never reach another's process). An entry takes the same
        options as a single cache and is enabled by being defined.
      '';
    };

  package =
    pkgs:
    mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { } (this repository)";
      description = "The loft package to run.";
    };

  # services.loft on a system (NixOS, nix-darwin): the default instance's cache options, the
  # package, more caches (`where` names what runs each) and the post-build hook (`hook` says how
  # Nix runs it there). home-manager has no hook and declares caches only.
  system =
    { pkgs, where, hook }:
    cache {
      stateDirectory = "/var/lib/loft";
      localCachePath = "/var/lib/loft/cache.db";
    }
    // {
      enable = lib.mkEnableOption "loft, which uploads new Nix store paths to a binary cache (the services.loft.* cache)";
      package = package pkgs;
      caches = caches {
        inherit where;
        entry = name: entry: {
          stateDirectory = "/var/lib/loft-${name}";
          stateDirectoryText = ''"/var/lib/loft-<name>"'';
          localCachePath = "${entry.stateDirectory}/cache.db";
          localCachePathText = ''"''${stateDirectory}/cache.db"'';
        };
      };
      postBuildHook.enable = lib.mkEnableOption "a Nix post-build hook ${hook} that hands every path Nix builds to the queue of every instance (`loft --enqueue`), so it is uploaded at once rather than when the store watcher notices it";
    };
}
