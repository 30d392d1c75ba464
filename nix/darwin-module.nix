# The services.loft nix-darwin module: the NixOS module's options (options.nix) where they make
# sense on macOS, each instance a launchd daemon (`loft` for services.loft itself, `loft-<name>` for
# each entry of services.loft.caches). What differs from NixOS, and why:
#   - launchd has no credentials: the daemons run as root and read each secret file in place, so
#     keep the files root-only (mode 0600); loft itself warns about a signing key others can read.
#     The rendered loft.toml, in the store, names the files and holds no secret.
#   - no sandbox and no StateDirectory=: loft creates its database's directory at start.
#   - launchd starts daemons with a bare environment: PATH names the system's Nix (nix-darwin's
#     nix.package when it manages Nix, else the default profile of a multi-user install).
#   - the post-build hook goes through nix.settings, which nix-darwin writes only while it manages
#     Nix (nix.enable); with nix.enable = false (e.g. another installer owns nix.conf) the option
#     would be ignored silently, so it is an assertion instead.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkIf mkMerge;

  cfg = config.services.loft;
  settingsFormat = pkgs.formats.toml { };
  declare = import ./options.nix { inherit lib settingsFormat; };

  all = import ./instances.nix {
    inherit cfg;
    withDefault = cfg.enable;
  };
  inherit (all) instances;
  configFile = i: settingsFormat.generate "${i.unit}.toml" i.rendered.settings;

  # nix-darwin always declares both; `or` keeps the module usable with a partial stand-in of `nix`.
  nixEnabled = config.nix.enable or true;
  binPath = lib.concatStringsSep ":" (
    lib.optional (nixEnabled && config.nix ? package) "${config.nix.package}/bin"
    ++ [
      "/nix/var/nix/profiles/default/bin"
      "/run/current-system/sw/bin"
      "/usr/bin"
      "/bin"
      "/usr/sbin"
      "/sbin"
    ]
  );

  # Nix runs the hook as root after every successful build, with the new paths in $OUT_PATHS; the
  # daemons run as root too, so no change of user. `|| true`: a failing hook fails the build.
  postBuildHook = pkgs.writeShellScript "loft-post-build-hook" (
    lib.concatMapStrings (i: ''
      ${cfg.package}/bin/loft --config ${configFile i} --enqueue $OUT_PATHS || true
    '') instances
  );

  daemon = i: {
    serviceConfig = {
      ProgramArguments = [
        "${cfg.package}/bin/loft"
        "--config"
        "${configFile i}"
      ] ++ i.rendered.cliFlags;
      RunAtLoad = true;
      KeepAlive = true;
      # launchd restarts at most this often (systemd's RestartSec=10s on NixOS).
      ThrottleInterval = 10;
      ProcessType = "Background";
      StandardOutPath = "/var/log/${i.unit}.log";
      StandardErrorPath = "/var/log/${i.unit}.log";
      EnvironmentVariables = {
        PATH = binPath;
        NIX_REMOTE = "daemon";
        HOME = i.stateDir;
        XDG_CACHE_HOME = "${i.stateDir}/cache";
      };
      Umask = 63; # 0077: the database and queue are root's alone
    };
  };
in
{
  options.services.loft = declare.system {
    inherit pkgs;
    where = "launchd daemon loft-<name>";
    hook = "(nix.settings.post-build-hook, which needs nix.enable)";
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
          {
            assertion = !cfg.postBuildHook.enable || nixEnabled;
            message =
              "services.loft.postBuildHook.enable sets nix.settings.post-build-hook, which nix-darwin "
              + "writes only with nix.enable = true; otherwise add the hook to your nix.conf yourself";
          }
        ]
        ++ map (message: {
          assertion = false;
          inherit message;
        }) all.problems;
    }
    (mkIf (instances != [ ]) {
      launchd.daemons = lib.listToAttrs (
        map (i: {
          name = i.unit;
          value = daemon i;
        }) instances
      );
      nix.settings.post-build-hook = mkIf cfg.postBuildHook.enable postBuildHook;
    })
  ];
}
