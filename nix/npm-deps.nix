# loft's npm dependencies for a Nix build, planned from package-lock.json alone.
#
# The lockfile (v3) lists every package under `packages."node_modules/..."` with its `version` and
# sha512 `integrity`, but no `resolved` URL (see fetch-npm-tarball.nix). This file picks the entries
# npm would install on the given platform, fetches each tarball through `fetchTarball`, and returns
# package.json and package-lock.json rewritten to point at the fetched files ("file:/nix/store/...").
# That is the shape nixpkgs' importNpmLock produces, so importNpmLock.npmConfigHook installs it
# offline.
#
# Builtins only: the test suite evaluates it with the real lockfile and checks the plan against the
# node_modules npm installed on the machine.
{
  # package.json and package-lock.json, parsed.
  package,
  packageLock,
  # The platform as npm names it: { os = process.platform; cpu = process.arch; },
  # e.g. { os = "linux"; cpu = "x64"; }.
  platform,
  # { name, version, integrity } -> the tarball's store path (a derivation or a string).
  fetchTarball,
}:
let
  inherit (builtins)
    all
    attrNames
    elem
    filter
    listToAttrs
    mapAttrs
    match
    substring
    ;

  entries = packageLock.packages or (throw "package-lock.json has no `packages`: lockfileVersion 2 or 3 is needed");

  # The package's own name: an alias entry records it in `name`, otherwise it is the part of the
  # key after the last "node_modules/" ("node_modules/a/node_modules/@s/b" -> "@s/b").
  nameOf = key: entry: entry.name or (builtins.head (match ".*node_modules/(.*)" key));

  # npm's os/cpu fields: a list of allowed values, or of "!value" exclusions.
  allows =
    value: list:
    let
      excluded = filter (v: substring 0 1 v == "!") list;
      allowed = filter (v: substring 0 1 v != "!") list;
    in
    !(elem "!${value}" excluded) && (allowed == [ ] || elem value allowed);

  # Optional packages for other platforms (esbuild's 25 binaries, fsevents) are skipped by npm
  # without being fetched; fetching them here would only waste downloads.
  installable =
    key: entry:
    key != ""
    && entry ? integrity
    && !(entry.link or false)
    && !(entry.inBundle or false)
    && allows platform.os (entry.os or [ ])
    && allows platform.cpu (entry.cpu or [ ]);

  planned = filter (key: installable key entries.${key}) (attrNames entries);

  tarballs = listToAttrs (
    map (key: {
      name = key;
      value = {
        name = nameOf key entries.${key};
        inherit (entries.${key}) version integrity;
        src = fetchTarball {
          name = nameOf key entries.${key};
          inherit (entries.${key}) version integrity;
        };
      };
    }) planned
  );

  lockWithFiles = packageLock // {
    packages = mapAttrs (
      key: entry: if tarballs ? ${key} then entry // { resolved = "file:${tarballs.${key}.src}"; } else entry
    ) entries;
  };

  # Like importNpmLock, the root package.json's own dependencies name the tarballs directly, so npm
  # never compares a version range with the registry while offline.
  toFiles = mapAttrs (
    name: range:
    let
      key = "node_modules/${name}";
    in
    if tarballs ? ${key} then "file:${tarballs.${key}.src}" else range
  );
  packageWithFiles =
    package
    // (if package ? dependencies then { dependencies = toFiles package.dependencies; } else { })
    // (if package ? devDependencies then { devDependencies = toFiles package.devDependencies; } else { });
in
assert all (key: entries.${key} ? version) planned;
{
  # Lock key -> { name, version, integrity, src }.
  inherit tarballs;
  package = packageWithFiles;
  packageLock = lockWithFiles;
}
