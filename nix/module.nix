# The services.loft NixOS module. Option names and defaults are those of the original Loft's module
# (its README's "Configure the Loft Service"), so an existing configuration keeps working as the
# default instance; services.loft.caches.<name> adds more caches, one service each. What it does
# with them differs where the original was unsafe:
#   - loft.toml (rendered by config-toml.nix) holds no secret; secrets reach each service as systemd
#     credentials, readable by that service alone, through loft's *_file settings;
#   - each service runs as its own user (`loft`, `loft-<name>`), not root, with the store and the
#     Nix database read-only;
#   - nix comes from config.nix.package, the Nix the system runs.
# The options are declared in options.nix, shared with the nix-darwin and home-manager modules.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib)
    mkIf
    mkMerge
    ;

  cfg = config.services.loft;
  settingsFormat = pkgs.formats.toml { };
  declare = import ./options.nix { inherit lib settingsFormat; };

  all = import ./instances.nix {
    inherit cfg;
    withDefault = cfg.enable;
    credentialsDirOf = unit: "/run/credentials/${unit}.service";
  };
  inherit (all) instances;
  configFile = i: settingsFormat.generate "${i.unit}.toml" i.rendered.settings;
  varLib = "/var/lib/";
  underVarLib = dir: lib.hasPrefix varLib dir && dir != varLib;

  # Nix runs the hook as root after every successful build, with the new paths in $OUT_PATHS.
  # `loft --enqueue` records them in an instance's queue (milliseconds, no network) and always
  # exits 0; running it as the instance's user keeps the queue database owned by the service's
  # user. `|| true`: a failing hook fails the build, and the store watcher finds the paths anyway.
  postBuildHook = pkgs.writeShellScript "loft-post-build-hook" (
    lib.concatMapStrings (i: ''
      ${pkgs.util-linux}/bin/setpriv --reuid=${i.unit} --regid=${i.unit} --clear-groups -- \
        ${cfg.package}/bin/loft --config ${configFile i} --enqueue $OUT_PATHS || true
    '') instances
  );

  service = i: {
    description = "loft: upload new Nix store paths to a binary cache (${i.option})";
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    after = [
      "network-online.target"
      "nix-daemon.socket"
    ];
    # The Nix the system runs: loft asks it for path info (through the daemon).
    path = lib.optional (config.nix ? package) config.nix.package;
    environment = {
      NIX_REMOTE = "daemon";
      HOME = i.stateDir;
      XDG_CACHE_HOME = "/var/cache/${i.unit}";
    };
    serviceConfig = import ./systemd-hardening.nix // {
      ExecStart = lib.concatStringsSep " " (
        [
          "${cfg.package}/bin/loft"
          "--config"
          "${configFile i}"
        ]
        ++ i.rendered.cliFlags
      );
      User = i.unit;
      Group = i.unit;
      # "%" would be a unit-file specifier.
      LoadCredential = map (c: "${c.id}:${lib.replaceStrings [ "%" ] [ "%%" ] c.path}") i.rendered.credentials;
      # systemd creates the state directory for the user, and hands over the whole tree when its
      # top is owned by someone else: the original module's root-owned cache.db moves over on first
      # start. (No tmpfiles rule for it: one would own the top directory first and so stop that.)
      StateDirectory = lib.removePrefix varLib i.stateDir;
      StateDirectoryMode = "0750";
      CacheDirectory = i.unit;
    };
  };
in
{
  options.services.loft = declare.system {
    inherit pkgs;
    where = "systemd service loft-<name> (user loft-<name>)";
    hook = "(nix.settings.post-build-hook)";
  };

  config = mkMerge [
    {
      assertions =
        [
          {
            assertion = !cfg.postBuildHook.enable || instances != [ ];
            message =
              "services.loft.postBuildHook.enable needs an uploader to hand the paths to: set "
              + "services.loft.enable = true or define services.loft.caches.<name>";
          }
        ]
        ++ map (i: {
          assertion = underVarLib i.stateDir;
          message = "${i.option}.stateDirectory must be under /var/lib (systemd's StateDirectory=), got ${i.stateDir}";
        }) instances
        ++ map (message: {
          assertion = false;
          inherit message;
        }) all.problems;
    }
    (mkIf (instances != [ ]) {
      users.users = lib.listToAttrs (
        map (i: {
          name = i.unit;
          value = {
            isSystemUser = true;
            group = i.unit;
            home = i.stateDir;
            description = "loft binary cache uploader (${i.option})";
          };
        }) instances
      );
      users.groups = lib.listToAttrs (
        map (i: {
          name = i.unit;
          value = { };
        }) instances
      );
      systemd.services = lib.listToAttrs (
        map (i: {
          name = i.unit;
          value = service i;
        }) instances
      );
      nix.settings.post-build-hook = mkIf cfg.postBuildHook.enable postBuildHook;
    })
  ];
}
