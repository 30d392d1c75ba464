# One npm package tarball as a fixed-output derivation, fetched by npm itself and pinned by the
# sha512 `integrity` that package-lock.json records for it.
#
# Why not fetchurl: loft's lockfile carries no `resolved` URLs (the repository keeps package
# registry host names out of its files), and nixpkgs has no `mirror://` scheme for npm, so a URL
# would have to be made up here. `npm pack NAME@VERSION` asks npm's configured registry instead and
# writes the registry's tarball byte for byte (npm checks it against the registry's integrity). Nix
# then checks the file against the lockfile's hash: a registry that served anything else fails the
# build, exactly as a fetchurl with the same hash would.
#
# Builtins only, so the test suite can evaluate (and, with network, build) it without nixpkgs.
# package.nix passes nixpkgs' shell, Node and coreutils.
{
  # The build platform, e.g. "x86_64-linux".
  system,
  # A POSIX shell (nixpkgs: stdenv.shell).
  shell,
  # PATH for the builder: must hold `npm` (with its `node`), `mkdir` and `mv`.
  path,
  # Environment variables passed from the Nix daemon's environment (proxies). npm's own
  # `npm_config_registry` is always passed, so a mirror can be chosen without editing this file.
  impureEnvVars ? [ ],
}:
{
  name,
  version,
  integrity,
}:
let
  # Store path names allow [A-Za-z0-9+-._?=]; npm names may hold "@", "/" and "~".
  safeName = builtins.replaceStrings [ "@" "/" "~" ] [ "" "-" "-" ] name;
in
derivation {
  name = "npm-${safeName}-${version}.tgz";
  inherit system;
  builder = shell;
  args = [
    "-c"
    ''
      set -eu
      # npm wants a writable home and cache; the build directory is the only writable place.
      export HOME="$TMPDIR" npm_config_cache="$TMPDIR/npm-cache"
      export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
      mkdir "$TMPDIR/pack"
      npm pack --ignore-scripts --pack-destination "$TMPDIR/pack" "$spec" >/dev/null
      mv "$TMPDIR"/pack/*.tgz "$out"
    ''
  ];
  PATH = path;
  spec = "${name}@${version}";
  # An SRI hash ("sha512-..."): Nix takes the algorithm from it.
  outputHash = integrity;
  outputHashMode = "flat";
  impureEnvVars = impureEnvVars ++ [ "npm_config_registry" ];
  # Downloads are cheaper than shipping a tarball from a remote builder.
  preferLocalBuild = true;
}
