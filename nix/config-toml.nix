# From the values of one cache's options (options.nix) to what its service needs: loft.toml as an
# attribute set, the secret files to hand over (systemd credentials on NixOS), loft's command-line
# flags, and the problems worth an assertion. The modules render `settings` with pkgs.formats.toml.
#
# No secret ever lands in `settings` (the rendered file is in the world-readable Nix store): every
# secret is a file the TOML names through loft's *_file keys (access_key_file, secret_key_file,
# session_token_file, [s3.extra_headers_file], signing_key_path, and [http]'s password_file,
# token_file, netrc_file, client_key_file, [http.extra_headers_file]). On NixOS systemd copies each
# file into $CREDENTIALS_DIRECTORY, where only the service can read it, and the TOML names the copy;
# under nix-darwin and home-manager the TOML names the file itself. The original Loft's module put
# its secrets in the environment instead.
#
# Builtins only, so it evaluates without nixpkgs; the test suite loads its output with loft's own
# config loader:  nix-instantiate --eval --strict --json -E 'import ./nix/config-toml.nix { ... }'
{
  # The cache's options with their values (config.services.loft, or one entry of its `caches`).
  cfg,
  # $CREDENTIALS_DIRECTORY of the unit (systemd puts it at /run/credentials/<unit name>), or null
  # when the service reads each secret file where it is (nix-darwin, home-manager).
  credentialsDir ? "/run/credentials/loft.service",
  # The only place the service writes (StateDirectory= on NixOS).
  stateDir ? cfg.stateDirectory or "/var/lib/loft",
}:
let
  inherit (builtins)
    attrNames
    filter
    isAttrs
    length
    listToAttrs
    mapAttrs
    removeAttrs
    stringLength
    substring
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
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

  # Where the cache is: an HTTP cache when its URL is set, else the bucket (the original's only one).
  target = if cfg.http.url != null then "http" else "s3";
  secrets = import ./secret-files.nix { inherit cfg target; };
  inherit (secrets) pathString;

  # What the TOML names for a secret file: the credential's copy, or the file itself.
  ref =
    id: value:
    if value == null then
      null
    else if credentialsDir == null then
      pathString value
    else
      "${credentialsDir}/${id}";
  headerTable =
    files:
    listToAttrs (
      map (h: {
        name = h.header;
        value = ref h.id h.path;
      }) files
    );
  headers =
    inline: files:
    optionalAttrs (inline != { }) { extra_headers = inline; }
    // optionalAttrs (files != [ ]) { extra_headers_file = headerTable files; };

  s3 = {
    inherit (cfg.s3) bucket region endpoint;
    access_key_file = ref "s3-access-key" cfg.s3.accessKeyFile;
    secret_key_file = ref "s3-secret-key" cfg.s3.secretKeyFile;
    session_token_file = ref "s3-session-token" cfg.s3.sessionTokenFile;
  }
  // headers cfg.s3.extraHeaders secrets.s3Headers;

  http = {
    inherit (cfg.http) url user;
    password_file = ref "http-password" cfg.http.passwordFile;
    token_file = ref "http-token" cfg.http.tokenFile;
    netrc_file = ref "http-netrc" cfg.http.netrcFile;
    client_key_file = ref "http-client-key" cfg.http.clientKeyFile;
    # Public material: named where it is, even in the store.
    ca_file = if cfg.http.caFile != null then pathString cfg.http.caFile else null;
    client_cert_file = if cfg.http.clientCertFile != null then pathString cfg.http.clientCertFile else null;
    max_attempts = cfg.http.maxAttempts;
    request_timeout_secs = cfg.http.requestTimeoutSecs;
  }
  // headers cfg.http.extraHeaders secrets.httpHeaders;

  # Keys loft added after the original, written only when they differ from loft's own default: a
  # configuration that leaves them alone then also runs on a loft from before they existed.
  unlessDefault =
    key: value: default:
    optionalAttrs (value != default) { ${key} = value; };

  loft = {
    upload_threads = cfg.uploadThreads;
    scan_on_startup = cfg.scanOnStartup;
    populate_cache_on_startup = cfg.populateCacheOnStartup;
    local_cache_path = pathString cfg.localCachePath;
    compression = cfg.compression;
    use_disk_for_large_nars = cfg.useDiskForLargeNars;
    large_nar_threshold_mb = cfg.largeNarThresholdMb;
    signing_key_path = ref "signing-key" cfg.signingKeyPath;
    signing_key_name = cfg.signingKeyName;
    skip_signed_by_keys = cfg.skipSignedByKeys;
    prune_enabled = cfg.pruning.enable;
    prune_schedule = cfg.pruning.schedule;
    prune_retention_days = cfg.pruning.retentionDays;
    prune_max_size_gb = cfg.pruning.maxSizeGb;
    prune_target_percentage = cfg.pruning.targetPercentage;
  }
  // unlessDefault "upload_logs" cfg.uploadLogs true
  // unlessDefault "write_nar_listing" cfg.writeNarListing false
  // unlessDefault "index_debug_info" cfg.indexDebugInfo false
  // unlessDefault "log_compression" cfg.logCompression "none"
  // optionalAttrs (cfg.memoryBudget != null) { memory_budget = cfg.memoryBudget; }
  // optionalAttrs (cfg.freshStartAfterUploads != null) {
    fresh_start_after_uploads = cfg.freshStartAfterUploads;
  };

  base = {
    inherit loft;
    ${target} = if target == "http" then http else s3;
  };

  settings = removeNulls (recursiveUpdate base cfg.extraConfig);

  given = name: value: if value != null then [ name ] else [ ];
  # [http]'s ways to log in: loft takes one (src/config/http-section.ts).
  httpLogins =
    optional (cfg.http.passwordFile != null) "http.user/passwordFile"
    ++ optional (cfg.http.tokenFile != null) "http.tokenFile"
    ++ optional (cfg.http.netrcFile != null) "http.netrcFile";
  keyFiles = given "accessKeyFile" cfg.s3.accessKeyFile ++ given "secretKeyFile" cfg.s3.secretKeyFile;
  cachePath = pathString (settings.loft.local_cache_path or "(unset)");

  # The options that hold a secret, by the inline key of loft.toml they replace.
  inlineSecretOptions = {
    access_key = "s3.accessKeyFile";
    secret_key = "s3.secretKeyFile";
    session_token = "s3.sessionTokenFile";
  };
  inlineSecrets = filter (key: (cfg.extraConfig.s3 or { }) ? ${key}) (attrNames inlineSecretOptions);
  otherTargets = filter (t: t != target && cfg.extraConfig ? ${t}) [
    "s3"
    "http"
    "local"
  ];

  secretsInStore = filter (s: hasPrefix "${builtins.storeDir}/" s.path) secrets.all;

  # Each one becomes an assertion of the module, its message prefixed with the option's path.
  problems =
    map (
      s:
      "${s.option} points into the Nix store (${s.path}), which every local user can read; "
      + "keep the secret outside it (for example with sops-nix or agenix under /run)"
    ) secretsInStore
    ++ optional (target == "s3" && length keyFiles == 1) (
      "s3.accessKeyFile and s3.secretKeyFile go together (only ${builtins.head keyFiles} is set); "
      + "leave both unset to use the AWS SDK's default credentials"
    )
    ++ optional (
      target == "s3" && cfg.s3.sessionTokenFile != null && length keyFiles != 2
    ) "s3.sessionTokenFile needs s3.accessKeyFile and s3.secretKeyFile"
    ++ optional (target == "http" && (cfg.http.user == null) != (cfg.http.passwordFile == null)) (
      "http.user and http.passwordFile go together (HTTP Basic authentication needs both)"
    )
    ++ optional (target == "http" && length httpLogins > 1) (
      "http: ${builtins.concatStringsSep ", " httpLogins} are different ways to log in; set one (loft refuses more)"
    )
    ++ map (
      key:
      "extraConfig.s3.${key} would put a secret into the world-readable Nix store; "
      + "use ${inlineSecretOptions.${key}} instead"
    ) inlineSecrets
    ++ map (
      t:
      "extraConfig.${t}: the module writes [${target}] (set http.url for [http]); loft refuses a "
      + "file with two cache targets"
    ) otherTargets
    ++ optional (!(hasPrefix "${stateDir}/" cachePath)) (
      "localCachePath must be inside ${stateDir} (the instance's state directory, the only place "
      + "it may write), got ${cachePath}"
    )
    ++ optional (cfg.signingKeyName != null && cfg.signingKeyPath == null) (
      "signingKeyName is set without signingKeyPath; the key's name comes from the key file, so set "
      + "signingKeyPath"
    );
in
{
  inherit settings problems target;
  # The database loft will open (for the modules' check that no two instances share one).
  database = cachePath;
  # LoadCredential= entries: the file at `path` appears to the service as ${credentialsDir}/${id}.
  credentials = map (s: { inherit (s) id path; }) secrets.all;
  cliFlags = optional cfg.debug "--debug";
}
