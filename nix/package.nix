# loft as a Nix package: `npm run build` (tsc -> dist/) with the dependencies of package-lock.json,
# lzma-native's addon compiled from source against the headers of the Node it runs on,
# better-sqlite3's Node-API binary as its tarball ships it, dev dependencies pruned, and `bin/loft`
# wrapping that Node.
#
# The lockfile has no `resolved` URLs, so nixpkgs' fetchNpmDeps would fetch nothing (it skips such
# entries) and importNpmLock would leave them to a network npm does not have in the sandbox.
# npm-deps.nix and fetch-npm-tarball.nix fetch each tarball by name and version instead, pinned by
# the lockfile's sha512 integrity; no npmDepsHash is needed, and a new lockfile needs no hash update.
{
  lib,
  stdenv,
  buildNpmPackage,
  importNpmLock,
  runCommand,
  coreutils,
  nodejs,
  makeWrapper,
}:
let
  package = lib.importJSON ../package.json;

  # What the `bin/loft` wrapper sets for Node unless the environment has it (src/cli/launch-env.ts).
  launchEnvArgs = lib.concatStringsSep " " (
    lib.mapAttrsToList (name: value: "--set-default ${name} ${lib.escapeShellArg value}") (
      import ./launch-env.nix
    )
  );
  packageLock = lib.importJSON ../package-lock.json;

  # The names npm gives the platform (process.platform, process.arch), for packages' os/cpu fields.
  npmPlatform = {
    os = stdenv.hostPlatform.parsed.kernel.name;
    cpu =
      {
        x86_64 = "x64";
        aarch64 = "arm64";
        i686 = "ia32";
        armv7l = "arm";
      }
      .${stdenv.hostPlatform.parsed.cpu.name} or stdenv.hostPlatform.parsed.cpu.name;
  };

  fetchTarball = import ./fetch-npm-tarball.nix {
    inherit (stdenv.buildPlatform) system;
    shell = stdenv.shell;
    path = lib.makeBinPath [
      nodejs
      coreutils
    ];
    impureEnvVars = lib.fetchers.proxyImpureEnvVars;
  };

  deps = import ./npm-deps.nix {
    inherit package packageLock fetchTarball;
    platform = npmPlatform;
  };

  # package.json and package-lock.json pointing at the fetched tarballs: what importNpmLock builds.
  npmDeps =
    runCommand "loft-${package.version}-npm-deps"
      {
        passAsFile = [
          "packageJson"
          "packageLockJson"
        ];
        packageJson = builtins.toJSON deps.package;
        packageLockJson = builtins.toJSON deps.packageLock;
      }
      ''
        mkdir "$out"
        cp "$packageJsonPath" "$out/package.json"
        cp "$packageLockJsonPath" "$out/package-lock.json"
      '';

  # The hook installs offline from npmDeps, then `npm rebuild` runs the addons' install scripts with
  # npm_config_nodedir set to this Node's sources.
  npmConfigHook = (importNpmLock.npmConfigHook.override or (_: importNpmLock.npmConfigHook)) {
    inherit nodejs;
  };

  sourceFiles =
    extra:
    lib.fileset.toSource {
      root = ../.;
      fileset = lib.fileset.unions (
        [
          ../package.json
          ../package-lock.json
          ../tsconfig.json
          ../tsconfig.build.json
          ../src
          ../README.md
          ../LICENSE
        ]
        ++ extra
      );
    };

  common = {
    inherit (package) version;
    inherit nodejs npmDeps npmConfigHook;
    # lzma-native would load the binaries shipped in its tarball; this makes it compile from source
    # (node-gyp-build reads it). better-sqlite3 13 has no install script: it loads the Node-API
    # binary for the platform from its tarball's prebuilds/ (linked against libc and libstdc++,
    # which the Node it runs in has already loaded).
    npm_config_build_from_source = "true";
  };

  # The unit tests and the type check, run on the same dependencies (no Nix or network needed).
  unitTests = buildNpmPackage (
    common
    // {
      pname = "loft-unit-tests";
      src = sourceFiles [
        ../test
        ../scripts
        ../bench
      ];
      dontNpmBuild = true;
      doCheck = true;
      # A test that needs Nix fails under CI instead of skipping.
      CI = "true";
      checkPhase = ''
        runHook preCheck
        node_modules/.bin/tsc --noEmit -p tsconfig.json
        node scripts/run-tests.mjs test/unit
        runHook postCheck
      '';
      installPhase = ''
        runHook preInstall
        touch "$out"
        runHook postInstall
      '';
    }
  );
in
buildNpmPackage (
  common
  // {
    pname = "loft";
    src = sourceFiles [ ];

    # `npm pack --dry-run` lists the files to install; without this it would run the `prepare`
    # script (a second tsc build).
    npmPackFlags = [ "--ignore-scripts" ];

    nativeBuildInputs = [ makeWrapper ];

    postInstall = ''
      pkg="$out/lib/node_modules/loft"
      # npm's hidden lockfile names each tarball's store path; nothing reads it at run time, and
      # keeping it would make every tarball a runtime dependency.
      rm -f "$pkg/node_modules/.package-lock.json"
      # Keep only the compiled addons: node-gyp's intermediates name the compiler, Python and the
      # Node sources, which would otherwise all become runtime dependencies.
      for addon in better-sqlite3 lzma-native; do
        build="$pkg/node_modules/$addon/build"
        if [ -d "$build" ]; then
          find "$build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
          find "$build/Release" -mindepth 1 -maxdepth 1 ! -name '*.node' -exec rm -rf {} +
        fi
      done
      # node-gyp-build loads build/Release first; the prebuilt binaries are not used.
      rm -rf "$pkg/node_modules/lzma-native/prebuilds"
      # The npm install hook's wrapper runs Node on dist/cli/main.js; this one sets the allocator's
      # settings first (nix/launch-env.nix), as the npm bin's shebang and bin/loft do. (The fixup's
      # patchShebangs takes the first word after `env -S` in dist/cli/main.js for the program and
      # drops that assignment; nothing here runs main.js by its shebang.)
      wrapProgram "$out/bin/loft" ${launchEnvArgs}
    '';

    passthru = {
      inherit npmDeps unitTests;
      inherit (deps) tarballs;
    };

    meta = {
      description = "Upload a Nix store to an S3-compatible binary cache, signed, closure by closure";
      license = lib.licenses.mit;
      mainProgram = "loft";
      platforms = lib.platforms.linux ++ lib.platforms.darwin;
    };
  }
)
