# The services.loft NixOS module. Option names and defaults are those of the original Loft's module
# (its README's "Configure the Loft Service"), so an existing configuration keeps working; what it
# does with them differs where the original was unsafe:
#   - loft.toml (rendered by config-toml.nix) holds no secret; secrets reach the service as systemd
#     credentials, readable by the service alone, through loft's *_file settings;
#   - the service runs as its own user `loft`, not root, with the store and the Nix database read-only;
#   - nix comes from config.nix.package, the Nix the system runs.
# Additions: s3.sessionTokenFile, compression "none", postBuildHook.enable.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    types
    ;

  cfg = config.services.loft;
  stateDir = "/var/lib/loft";
  settingsFormat = pkgs.formats.toml { };
  rendered = import ./config-toml.nix { inherit cfg stateDir; };
  configFile = settingsFormat.generate "loft.toml" rendered.settings;

  secretFile =
    what: example:
    mkOption {
      type = types.nullOr types.path;
      default = null;
      inherit example;
      description = ''
        File holding ${what}. It is handed to the service as a systemd credential (LoadCredential=),
        so it may be readable by root only, and never enters the Nix store.
      '';
    };

  # nix-daemon runs the hook as root after every successful build, with the new paths in $OUT_PATHS.
  # `loft --enqueue` records them in the service's queue (milliseconds, no network) and always exits
  # 0; running it as `loft` keeps the queue database owned by the service's user. `|| true`: a
  # failing hook fails the build, and the service's own store watcher finds the paths anyway.
  postBuildHook = pkgs.writeShellScript "loft-post-build-hook" ''
    ${pkgs.util-linux}/bin/setpriv --reuid=loft --regid=loft --clear-groups -- \
      ${cfg.package}/bin/loft --config ${configFile} --enqueue $OUT_PATHS || true
  '';
in
{
  options.services.loft = {
    enable = mkEnableOption "loft, which uploads new Nix store paths to an S3 binary cache";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { } (this repository)";
      description = "The loft package to run.";
    };

    debug = mkOption {
      type = types.bool;
      default = false;
      description = "Log at debug level (`loft --debug`).";
    };

    s3 = {
      bucket = mkOption {
        type = types.str;
        example = "nix-cache";
        description = "Name of the bucket that holds the binary cache.";
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
      extraHeaders = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          "CF-Access-Client-Id" = "0123.access";
        };
        description = ''
          HTTP headers added to every S3 request (e.g. for Cloudflare Access). The values are written
          to the Nix store, which every local user can read: use extraHeadersFile for secrets.
        '';
      };
      extraHeadersFile = mkOption {
        type = types.attrsOf types.path;
        default = { };
        example = {
          "CF-Access-Client-Secret" = "/run/secrets/cf-access-secret";
        };
        description = ''
          HTTP headers added to every S3 request, each value read from a file (a systemd credential,
          so the file may be readable by root only). A header set here wins over extraHeaders.
        '';
      };
    };

    localCachePath = mkOption {
      type = types.path;
      default = "/var/lib/loft/cache.db";
      description = ''
        loft's SQLite database: which paths the bucket holds, and the upload queue. Must be inside
        /var/lib/loft, the only directory the service may write.
      '';
    };

    uploadThreads = mkOption {
      type = types.ints.between 1 256;
      default = 12;
      description = "How many store paths are uploaded at once.";
    };

    scanOnStartup = mkOption {
      type = types.bool;
      default = true;
      description = "At the first start, check every valid store path and upload what the bucket lacks.";
    };

    populateCacheOnStartup = mkOption {
      type = types.bool;
      default = false;
      description = "At start, fill the local database from the bucket's listing when it is empty.";
    };

    compression = mkOption {
      type = types.enum [
        "zstd"
        "xz"
        "none"
      ];
      default = "zstd";
      description = "Compression of the uploaded NARs.";
    };

    useDiskForLargeNars = mkOption {
      type = types.bool;
      default = true;
      description = "Accepted for compatibility with the original Loft; loft streams every NAR.";
    };

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

    pruning = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Delete old paths from the bucket on a schedule (whole closures only).";
      };
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

    postBuildHook.enable = mkEnableOption ''
      a Nix post-build hook that hands every path Nix builds to loft's queue (`loft --enqueue`), so it
      is uploaded at once rather than when the store watcher notices it
    '';
  };

  config = mkIf cfg.enable {
    assertions = map (problem: {
      assertion = false;
      message = "services.loft.${problem}";
    }) rendered.problems;

    users.users.loft = {
      isSystemUser = true;
      group = "loft";
      home = stateDir;
      description = "loft binary cache uploader";
    };
    users.groups.loft = { };

    nix.settings.post-build-hook = mkIf cfg.postBuildHook.enable postBuildHook;

    systemd.services.loft = {
      description = "loft: upload new Nix store paths to an S3 binary cache";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [
        "network-online.target"
        "nix-daemon.socket"
      ];
      # The Nix the system runs: loft asks it for path info (through the daemon).
      path = [ config.nix.package ];
      environment = {
        NIX_REMOTE = "daemon";
        HOME = stateDir;
        XDG_CACHE_HOME = "/var/cache/loft";
      };
      serviceConfig = {
        ExecStart = lib.concatStringsSep " " (
          [
            "${cfg.package}/bin/loft"
            "--config"
            "${configFile}"
          ]
          ++ rendered.cliFlags
        );
        User = "loft";
        Group = "loft";
        # "%" would be a unit-file specifier.
        LoadCredential = map (c: "${c.id}:${lib.replaceStrings [ "%" ] [ "%%" ] c.path}") rendered.credentials;
        # systemd creates /var/lib/loft for `loft`, and hands over the whole tree when its top is
        # owned by someone else: the original module's root-owned cache.db moves over on first start.
        # (No tmpfiles rule for it: one would own the top directory first and so stop that.)
        StateDirectory = "loft";
        StateDirectoryMode = "0750";
        CacheDirectory = "loft";
        UMask = "0077";
        Restart = "on-failure";
        RestartSec = "10s";
        # 2 (usage) and 3 (configuration) cannot heal by themselves; see `loft --help`.
        RestartPreventExitStatus = "2 3";

        # Read-only everywhere except its state and cache directories; the store and the Nix
        # database are only read (the daemon socket still connects: sockets ignore read-only mounts).
        ProtectSystem = "strict";
        ReadOnlyPaths = [ "/nix" ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        DevicePolicy = "closed";
        NoNewPrivileges = true;
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        RestrictSUIDSGID = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "invisible";
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        LockPersonality = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        # A call outside the filter fails instead of killing the process (Node probes optional ones).
        SystemCallErrorNumber = "EPERM";
        # Not MemoryDenyWriteExecute: V8's JIT needs memory that is writable and executable.
      };
    };
  };
}
