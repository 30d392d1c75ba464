# The services.loft home-manager module: services.loft.caches.<name>, one store-watching uploader
# per cache, run as the user: `systemd.user.services.loft-<name>` on Linux, `launchd.agents.loft-<name>`
# on macOS. Each has its own loft.toml (in the store, naming its secret files, holding none) and
# reads only the secret files of its own cache. Entries take the options of options.nix, the same
# as the NixOS and nix-darwin modules.
#
# No post-build hook: Nix takes one only from the system's nix.conf (or a trusted user's), so the
# store watcher (fs.watch on /nix/store, with a periodic listing behind it) finds new paths.
{
  config,
  options,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.loft;
  settingsFormat = pkgs.formats.toml { };
  declare = import ./options.nix { inherit lib settingsFormat; };
  isDarwin = pkgs.stdenv.hostPlatform.isDarwin;

  all = import ./instances.nix {
    inherit cfg;
    withDefault = false;
  };
  inherit (all) instances;
  configFile = i: settingsFormat.generate "${i.unit}.toml" i.rendered.settings;

  # XDG's state directory: home-manager's xdg.stateHome, else its default under the home directory.
  stateHome =
    if options ? xdg && config.xdg ? stateHome then
      config.xdg.stateHome
    else if options ? home && config.home ? homeDirectory then
      "${config.home.homeDirectory}/.local/state"
    else
      throw "services.loft.caches.<name>.stateDirectory: neither xdg.stateHome nor home.homeDirectory is declared to derive it from; set it";

  # A user service starts with a bare environment: the Nix the user's home-manager installs when it
  # manages one (nix.package), then where multi-user installs, NixOS and nix-darwin put theirs.
  nixPackage = if options ? nix.package then config.nix.package else null;
  binPath = lib.concatStringsSep ":" (
    lib.optional (nixPackage != null) "${nixPackage}/bin"
    ++ [
      "/nix/var/nix/profiles/default/bin"
      "/run/current-system/sw/bin"
      "/usr/bin"
      "/bin"
    ]
  );
  environment = i: {
    PATH = binPath;
    NIX_REMOTE = "daemon";
    XDG_CACHE_HOME = "${i.stateDir}/cache";
  };
  command =
    i:
    [
      "${cfg.package}/bin/loft"
      "--config"
      "${configFile i}"
    ]
    ++ i.rendered.cliFlags;

  systemdUnit = i: {
    Unit.Description = "loft: upload new Nix store paths to a binary cache (${i.option})";
    Service = {
      ExecStart = lib.concatStringsSep " " (command i);
      Environment = lib.mapAttrsToList (name: value: "${name}=${value}") (environment i);
      UMask = "0077";
      Restart = "on-failure";
      RestartSec = 10;
      # 2 (usage) and 3 (configuration) cannot heal by themselves; see `loft --help`.
      RestartPreventExitStatus = "2 3";
    };
    Install.WantedBy = [ "default.target" ];
  };

  launchdAgent = i: {
    enable = true;
    config = {
      ProgramArguments = command i;
      RunAtLoad = true;
      KeepAlive = true;
      ThrottleInterval = 10;
      ProcessType = "Background";
      StandardOutPath = "${i.stateDir}/loft.log";
      StandardErrorPath = "${i.stateDir}/loft.log";
      EnvironmentVariables = environment i;
      Umask = 63; # 0077
    };
  };

  byUnit =
    f:
    lib.listToAttrs (
      map (i: {
        name = i.unit;
        value = f i;
      }) instances
    );
in
{
  options.services.loft = {
    package = declare.package pkgs;
    caches = declare.caches {
      where = if isDarwin then "launchd agent loft-<name>" else "systemd user service loft-<name>";
      entry = name: entry: {
        stateDirectory = "${stateHome}/loft/${name}";
        stateDirectoryText = ''"''${config.xdg.stateHome}/loft/<name>"'';
        localCachePath = "${entry.stateDirectory}/cache.db";
        localCachePathText = ''"''${stateDirectory}/cache.db"'';
      };
    };
  };

  config = lib.mkMerge [
    {
      assertions = map (message: {
        assertion = false;
        inherit message;
      }) all.problems;
    }
    (lib.mkIf (instances != [ ] && !isDarwin) { systemd.user.services = byUnit systemdUnit; })
    (lib.mkIf (instances != [ ] && isDarwin) { launchd.agents = byUnit launchdAgent; })
  ];
}
