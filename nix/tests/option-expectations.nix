# What test/integration/nix-module-options.test.ts expects of services.loft, as data: the original
# Loft's documented defaults, and how each key of loft's config is reached from the module. Plain
# values only (no function, no import), so the test reads it with `nix-instantiate --eval --json`.
let
  required = "<no default>";
in
{
  inherit required;

  # services.loft as the original Loft documents it: the defaults its README's "Configure the Loft
  # Service" section shows and, for the options it leaves out or shows only as examples, the
  # declarations of its module (nixos/module.nix).
  originalDefaults = {
    enable = false;
    debug = false;
    "s3.bucket" = required;
    "s3.region" = "us-east-1";
    "s3.endpoint" = required;
    "s3.accessKeyFile" = required;
    "s3.secretKeyFile" = required;
    "s3.extraHeaders" = { };
    "s3.extraHeadersFile" = { };
    localCachePath = "/var/lib/loft/cache.db";
    uploadThreads = 12;
    scanOnStartup = true;
    populateCacheOnStartup = false;
    compression = "zstd";
    useDiskForLargeNars = true;
    largeNarThresholdMb = 1024;
    signingKeyPath = null;
    signingKeyName = null;
    skipSignedByKeys = [
      "cache.nixos.org-1"
      "nix-community.cachix.org-1"
    ];
    "pruning.enable" = false;
    "pruning.schedule" = null;
    "pruning.retentionDays" = 30;
    "pruning.maxSizeGb" = null;
    "pruning.targetPercentage" = null;
    extraConfig = { };
  };

  # Required there, optional here: AWS S3 needs no endpoint, and without key files the AWS SDK's own
  # credential chain (instance roles, web identity) applies, as it does for loft outside NixOS.
  widened = {
    "s3.endpoint" = null;
    "s3.accessKeyFile" = null;
    "s3.secretKeyFile" = null;
  };

  # Options the original does not have, with their defaults.
  loftAdditions = {
    "s3.sessionTokenFile" = null;
    "postBuildHook.enable" = false;
    caches = { };
    stateDirectory = "/var/lib/loft";
    "http.url" = null;
    "http.user" = null;
    "http.passwordFile" = null;
    "http.tokenFile" = null;
    "http.netrcFile" = null;
    "http.extraHeaders" = { };
    "http.extraHeadersFile" = { };
    "http.caFile" = null;
    "http.clientCertFile" = null;
    "http.clientKeyFile" = null;
    "http.maxAttempts" = null;
    "http.requestTimeoutSecs" = null;
    uploadLogs = true;
    writeNarListing = false;
    indexDebugInfo = false;
    logCompression = "none";
    memoryBudget = null;
    freshStartAfterUploads = null;
  };

  # Options that write no key of loft.toml: what runs rather than what it reads (debug is --debug).
  notConfigKeys = [
    "enable"
    "package"
    "debug"
    "extraConfig"
    "postBuildHook.enable"
    "caches"
    "stateDirectory"
  ];

  # A valid value other than the default for every option that writes a key.
  samples = {
    "s3.bucket" = "sample-bucket";
    "s3.region" = "eu-west-3";
    "s3.endpoint" = "http://127.0.0.1:3900";
    "s3.accessKeyFile" = "/run/secrets/a";
    "s3.secretKeyFile" = "/run/secrets/s";
    "s3.sessionTokenFile" = "/run/secrets/t";
    "s3.extraHeaders" = {
      X-Sample = "v";
    };
    "s3.extraHeadersFile" = {
      X-Sample = "/run/secrets/h";
    };
    localCachePath = "/var/lib/loft/other.db";
    uploadThreads = 7;
    scanOnStartup = false;
    populateCacheOnStartup = true;
    compression = "xz";
    useDiskForLargeNars = false;
    largeNarThresholdMb = 2048;
    signingKeyPath = "/run/secrets/k";
    signingKeyName = "cache.example.org-1";
    skipSignedByKeys = [ "other-1" ];
    "pruning.enable" = true;
    "pruning.schedule" = "24h";
    "pruning.retentionDays" = 7;
    "pruning.maxSizeGb" = 100;
    "pruning.targetPercentage" = 70;
    # Rendered over an [http] cache (the test's base sets http.url).
    "http.url" = "https://cache.example.org/other";
    "http.user" = "alice";
    "http.passwordFile" = "/run/secrets/p";
    "http.tokenFile" = "/run/secrets/t";
    "http.netrcFile" = "/run/secrets/n";
    "http.extraHeaders" = {
      X-Sample = "v";
    };
    "http.extraHeadersFile" = {
      X-Sample = "/run/secrets/h";
    };
    "http.caFile" = "/etc/ssl/ca.pem";
    "http.clientCertFile" = "/etc/ssl/client.pem";
    "http.clientKeyFile" = "/run/secrets/client-key";
    "http.maxAttempts" = 3;
    "http.requestTimeoutSecs" = 30;
    uploadLogs = false;
    writeNarListing = true;
    indexDebugInfo = true;
    logCompression = "br";
    memoryBudget = "192MiB";
    freshStartAfterUploads = 0;
  };

  # Keys of loft's config with no option of their own, reached through extraConfig: the value to
  # set, the Config field it lands in, and the value expected there. A key added to src/config fails
  # the drift test until it gets an option, a line here, or a line in `refused`.
  leftToExtraConfig = {
    "s3.force_path_style" = {
      value = false;
      field = "storage.s3.forcePathStyle";
      expected = false;
    };
    "s3.part_size_mb" = {
      value = 16;
      field = "storage.s3.partSizeMb";
      expected = 16;
    };
    "s3.max_attempts" = {
      value = 3;
      field = "storage.s3.maxAttempts";
      expected = 3;
    };
    "s3.request_timeout_secs" = {
      value = 30;
      field = "storage.s3.requestTimeoutSecs";
      expected = 30;
    };
    "s3.prefix" = {
      value = "caches/main";
      field = "storage.s3.prefix";
      expected = "caches/main/";
    };
    "loft.compression_level" = {
      value = 9;
      field = "compressionLevel";
      expected = 9;
    };
    "loft.upload_derivations" = {
      value = true;
      field = "uploadDerivations";
      expected = true;
    };
    "loft.priority" = {
      value = 45;
      field = "priority";
      expected = 45;
    };
    "loft.prune_orphan_grace_hours" = {
      value = 48;
      field = "prune.orphanGraceHours";
      expected = 48;
    };
    "loft.metrics_listen" = {
      value = "127.0.0.1:9464";
      field = "metricsListen";
      expected = {
        host = "127.0.0.1";
        port = 9464;
      };
    };
    "loft.publish_roots" = {
      value = [ "/run/current-system" ];
      field = "publishRoots";
      expected = [ "/run/current-system" ];
    };
    "loft.prune_grace_hours" = {
      value = 0.5;
      field = "prune.graceHours";
      expected = 0.5;
    };
  };

  # Keys the module refuses (config-toml.nix reports them for an assertion): inline secrets would
  # sit in the world-readable store, and [local] cannot stand beside the [s3] the module writes.
  refused = {
    "s3.access_key" = "x";
    "s3.secret_key" = "x";
    "s3.session_token" = "x";
    "local.path" = "/x";
  };
}
