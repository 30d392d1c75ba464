# From the values of the services.loft options to what the service needs: loft.toml as an attribute
# set, the systemd credentials that carry the secrets, loft's command-line flags, and the problems
# worth an assertion. module.nix renders `settings` with pkgs.formats.toml.
#
# No secret ever lands in `settings` (the rendered file is in the world-readable Nix store): every
# secret file option becomes a LoadCredential= entry, systemd copies the file into
# $CREDENTIALS_DIRECTORY where only the service can read it, and the TOML names that copy through
# loft's *_file keys (access_key_file, secret_key_file, session_token_file, [s3.extra_headers_file],
# signing_key_path). The original Loft's module put its secrets in the environment instead.
#
# Builtins only, so it evaluates without nixpkgs; the test suite loads its output with loft's own
# config loader:  nix-instantiate --eval --strict --json -E 'import ./nix/config-toml.nix { ... }'
{
  # config.services.loft: every option with its value.
  cfg,
  # $CREDENTIALS_DIRECTORY of the unit: systemd puts it at /run/credentials/<unit name>.
  credentialsDir ? "/run/credentials/loft.service",
  # StateDirectory=loft: the only place the hardened service can write.
  stateDir ? "/var/lib/loft",
}:
let
  inherit (builtins)
    attrNames
    filter
    genList
    isAttrs
    isPath
    length
    listToAttrs
    mapAttrs
    removeAttrs
    stringLength
    substring
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  # A Nix path value stays where it is (toString does not copy it into the store).
  pathString = p: if isPath p then toString p else p;
  optional = cond: value: if cond then [ value ] else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };
  # Like lib.recursiveUpdate: tables merge key by key, anything else on the right wins.
  recursiveUpdate =
    left: right:
    left
    // mapAttrs (
      name: value:
      if isAttrs value && isAttrs (left.${name} or null) then recursiveUpdate left.${name} value else value
    ) right;
  # TOML has no null: a null (an unset option, or a key removed through extraConfig) drops the key.
  removeNulls =
    attrs:
    mapAttrs (_: v: if isAttrs v then removeNulls v else v) (
      removeAttrs attrs (filter (name: attrs.${name} == null) (attrNames attrs))
    );

  # Header files, in name order, as credentials "s3-header-1", "s3-header-2", ...: header names may
  # hold characters that systemd gives a meaning to in unit files (such as "%").
  headerNames = attrNames cfg.s3.extraHeadersFile;
  headerFiles = genList (i: {
    header = builtins.elemAt headerNames i;
    id = "s3-header-${toString (i + 1)}";
    option = "s3.extraHeadersFile.\"${builtins.elemAt headerNames i}\"";
    path = pathString cfg.s3.extraHeadersFile.${builtins.elemAt headerNames i};
  }) (length headerNames);

  secretFiles =
    optional (cfg.s3.accessKeyFile != null) {
      id = "s3-access-key";
      option = "s3.accessKeyFile";
      path = pathString cfg.s3.accessKeyFile;
    }
    ++ optional (cfg.s3.secretKeyFile != null) {
      id = "s3-secret-key";
      option = "s3.secretKeyFile";
      path = pathString cfg.s3.secretKeyFile;
    }
    ++ optional (cfg.s3.sessionTokenFile != null) {
      id = "s3-session-token";
      option = "s3.sessionTokenFile";
      path = pathString cfg.s3.sessionTokenFile;
    }
    ++ optional (cfg.signingKeyPath != null) {
      id = "signing-key";
      option = "signingKeyPath";
      path = pathString cfg.signingKeyPath;
    }
    ++ headerFiles;

  credential = id: "${credentialsDir}/${id}";

  base = {
    s3 = {
      inherit (cfg.s3) bucket region endpoint;
      access_key_file = if cfg.s3.accessKeyFile != null then credential "s3-access-key" else null;
      secret_key_file = if cfg.s3.secretKeyFile != null then credential "s3-secret-key" else null;
      session_token_file = if cfg.s3.sessionTokenFile != null then credential "s3-session-token" else null;
    }
    // optionalAttrs (cfg.s3.extraHeaders != { }) { extra_headers = cfg.s3.extraHeaders; }
    // optionalAttrs (headerFiles != [ ]) {
      extra_headers_file = listToAttrs (
        map (h: {
          name = h.header;
          value = credential h.id;
        }) headerFiles
      );
    };
    loft = {
      upload_threads = cfg.uploadThreads;
      scan_on_startup = cfg.scanOnStartup;
      populate_cache_on_startup = cfg.populateCacheOnStartup;
      local_cache_path = pathString cfg.localCachePath;
      compression = cfg.compression;
      use_disk_for_large_nars = cfg.useDiskForLargeNars;
      large_nar_threshold_mb = cfg.largeNarThresholdMb;
      signing_key_path = if cfg.signingKeyPath != null then credential "signing-key" else null;
      signing_key_name = cfg.signingKeyName;
      skip_signed_by_keys = cfg.skipSignedByKeys;
      prune_enabled = cfg.pruning.enable;
      prune_schedule = cfg.pruning.schedule;
      prune_retention_days = cfg.pruning.retentionDays;
      prune_max_size_gb = cfg.pruning.maxSizeGb;
      prune_target_percentage = cfg.pruning.targetPercentage;
    };
  };

  settings = removeNulls (recursiveUpdate base cfg.extraConfig);

  given = name: value: if value != null then [ name ] else [ ];
  keyFiles = given "accessKeyFile" cfg.s3.accessKeyFile ++ given "secretKeyFile" cfg.s3.secretKeyFile;
  cachePath = pathString (settings.loft.local_cache_path or "(unset)");

  # The options that hold a secret, by the inline key of loft.toml they replace.
  inlineSecretOptions = {
    access_key = "s3.accessKeyFile";
    secret_key = "s3.secretKeyFile";
    session_token = "s3.sessionTokenFile";
  };
  inlineSecrets = filter (key: (cfg.extraConfig.s3 or { }) ? ${key}) (attrNames inlineSecretOptions);

  secretsInStore = filter (s: hasPrefix "${builtins.storeDir}/" s.path) secretFiles;

  # Each one becomes an assertion of the module (and its message, prefixed "services.loft.").
  problems =
    map (
      s:
      "${s.option} points into the Nix store (${s.path}), which every local user can read; "
      + "keep the secret outside it (for example with sops-nix or agenix under /run)"
    ) secretsInStore
    ++ optional (length keyFiles == 1) (
      "s3.accessKeyFile and s3.secretKeyFile go together (only ${builtins.head keyFiles} is set); "
      + "leave both unset to use the AWS SDK's default credentials"
    )
    ++ optional (
      cfg.s3.sessionTokenFile != null && length keyFiles != 2
    ) "s3.sessionTokenFile needs s3.accessKeyFile and s3.secretKeyFile"
    ++ map (
      key:
      "extraConfig.s3.${key} would put a secret into the world-readable Nix store; "
      + "use services.loft.${inlineSecretOptions.${key}} instead"
    ) inlineSecrets
    ++ optional (cfg.extraConfig ? local) (
      "extraConfig.local: the module always writes [s3]; loft refuses a file with both [s3] and [local]"
    )
    ++ optional (!(hasPrefix "${stateDir}/" cachePath)) (
      "localCachePath must be inside ${stateDir} (the service's StateDirectory, the only place it "
      + "may write), got ${cachePath}"
    )
    ++ optional (cfg.signingKeyName != null && cfg.signingKeyPath == null) (
      "signingKeyName is set without signingKeyPath; the key's name comes from the key file, so set "
      + "signingKeyPath"
    );
in
{
  inherit settings problems;
  # LoadCredential= entries: the file at `path` appears to the service as ${credentialsDir}/${id}.
  credentials = map (s: { inherit (s) id path; }) secretFiles;
  cliFlags = optional cfg.debug "--debug";
}
