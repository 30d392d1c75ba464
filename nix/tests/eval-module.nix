# One of the flake's modules evaluated by the real module system: nixpkgs' lib.evalModules, the
# module as flake.nix exports it, the settings under test, and small stand-ins for what the module
# reads and sets (the option trees systemd, launchd, users, nix, xdg, home, assertions as free-form
# attribute sets, and a pkgs with only what the modules call). Used by
# test/integration/nix-module-eval.test.ts:
#
#   nix-instantiate --eval --strict --json nix/tests/eval-module.nix \
#     --argstr lib <nixpkgs>/lib --argstr kind nixos --argstr settings '{"services":{...}}'
#
# pkgs.formats.toml's stand-in writes the settings as JSON with builtins.toFile: a real file in the
# store, which the test turns into TOML (as pkgs.formats.toml would) for loft's own loader.
{
  # The directory of nixpkgs' lib (lib/default.nix), e.g. a checkout of nix-community/nixpkgs.lib.
  lib,
  # nixos | darwin | home-manager
  kind,
  # The configuration under test, as JSON.
  settings,
  system ? if kind == "darwin" then "aarch64-darwin" else "x86_64-linux",
}:
let
  nixLib = import lib;
  inherit (nixLib) mkOption types;

  # A stand-in nixpkgs input for flake.nix: only the module wiring is used, never a package.
  flake = (import ../../flake.nix).outputs {
    self = flake;
    nixpkgs = {
      lib = nixLib;
      legacyPackages = throw "eval-module.nix has no nixpkgs packages";
    };
  };
  module =
    {
      nixos = flake.nixosModules.default;
      darwin = flake.darwinModules.default;
      home-manager = flake.homeManagerModules.default;
    }
    .${kind};

  fakePackage = name: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/00000000000000000000000000000000-${name}";
  };
  pkgs = {
    formats.toml = _: {
      type = types.attrsOf types.anything;
      generate = name: value: builtins.toFile name (builtins.toJSON value);
    };
    writeShellScript = name: text: builtins.toFile name "#!/bin/sh\n${text}";
    util-linux = fakePackage "util-linux";
    stdenv.hostPlatform = {
      inherit system;
      isDarwin = nixLib.hasSuffix "-darwin" system;
      isLinux = nixLib.hasSuffix "-linux" system;
    };
    callPackage = _: _: throw "eval-module.nix builds no package; set services.loft.package";
  };

  freeform = mkOption {
    type = types.attrsOf types.anything;
    default = { };
  };
  standIns = {
    options = {
      systemd = freeform;
      launchd = freeform;
      users = freeform;
      nix = freeform;
      xdg = freeform;
      home = freeform;
      assertions = mkOption {
        type = types.listOf types.anything;
        default = [ ];
      };
    };
    # What the real systems provide: the Nix package, and home-manager's directories.
    config = {
      nix.package = nixLib.mkDefault (fakePackage "nix");
      nix.enable = nixLib.mkDefault true;
      home.homeDirectory = nixLib.mkDefault "/home/alice";
      xdg.stateHome = nixLib.mkDefault "/home/alice/.local/state";
      services.loft.package = nixLib.mkOverride 90 (fakePackage "loft");
    };
  };

  evaluated = nixLib.evalModules {
    modules = [
      module
      standIns
      (builtins.fromJSON settings)
    ];
    specialArgs = { inherit pkgs; };
  };
  inherit (evaluated) config;
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
in
# Like NixOS, nix-darwin and home-manager, which check the assertions before they build anything:
# with a failed one, nothing else is evaluated (a unit of a refused configuration may not even
# evaluate, e.g. a cache name no store path may hold).
if failed != [ ] then
  { inherit failed; }
else
  {
    inherit failed;
    inherit (config)
      systemd
      launchd
      users
      ;
    nix.settings = config.nix.settings or { };
  }
