# The uploaders one module runs: the default instance (services.loft itself, on NixOS and
# nix-darwin, when enabled) and one per entry of services.loft.caches, each with its rendered
# loft.toml (config-toml.nix), plus the problems no single instance can see: two instances sharing
# a state directory or a database (two daemons on one SQLite queue would each take the other's
# work, and their presence records would mix two caches), and entry names that cannot become
# unit names. Builtins only (see config-toml.nix).
{
  # config.services.loft
  cfg,
  # Whether services.loft itself is an instance (false under home-manager, which has only caches).
  withDefault,
  # The secrets' directory of a unit (NixOS: systemd credentials), or null: read in place.
  credentialsDirOf ? unit: null,
}:
let
  inherit (builtins)
    attrNames
    concatLists
    elemAt
    genList
    length
    match
    stringLength
    substring
    ;

  entry = name: option: unit: instanceCfg: {
    inherit name option unit;
    cfg = instanceCfg;
    stateDir = instanceCfg.stateDirectory;
    rendered = import ./config-toml.nix {
      cfg = instanceCfg;
      credentialsDir = credentialsDirOf unit;
      stateDir = instanceCfg.stateDirectory;
    };
  };

  instances =
    (if withDefault then [ (entry null "services.loft" "loft" cfg) ] else [ ])
    ++ map (name: entry name "services.loft.caches.${name}" "loft-${name}" cfg.caches.${name}) (
      attrNames cfg.caches
    );

  # "/var/lib/loft" and "/var/lib/loft/x" overlap as much as two equal paths do.
  within = a: b: a == b || substring 0 (stringLength a + 1) b == "${a}/";
  n = length instances;
  pairs = concatLists (
    genList (i: genList (d: [ (elemAt instances i) (elemAt instances (i + d + 1)) ]) (n - i - 1)) n
  );
  clash =
    pair:
    let
      a = elemAt pair 0;
      b = elemAt pair 1;
    in
    (
      if within a.stateDir b.stateDir || within b.stateDir a.stateDir then
        [
          (
            "${a.option} and ${b.option} share the state directory ${a.stateDir} / ${b.stateDir}; give "
            + "each instance its own stateDirectory (and localCachePath inside it)"
          )
        ]
      else
        [ ]
    )
    ++ (
      if a.rendered.database == b.rendered.database then
        [
          (
            "${a.option} and ${b.option} share the database ${a.rendered.database}; two daemons on "
            + "one queue would take each other's work and mix two caches' records"
          )
        ]
      else
        [ ]
    );

  badNames = builtins.filter (name: match "[A-Za-z0-9_-]{1,26}" name == null) (attrNames cfg.caches);
in
{
  inherit instances;
  # Assertion messages, each already naming its option.
  problems =
    concatLists (map (i: map (p: "${i.option}.${p}") i.rendered.problems) instances)
    ++ concatLists (map clash pairs)
    ++ map (
      name:
      "services.loft.caches.\"${name}\": the name becomes the unit (and user) loft-${name}; use 1 to "
      + "26 letters, digits, '-' or '_'"
    ) badNames;
}
