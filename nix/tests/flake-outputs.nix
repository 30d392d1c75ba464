# The shape of flake.nix's outputs, the attribute names `nix flake show` would list, read without
# nixpkgs: `outputs` is called with a stand-in nixpkgs input that has the few lib functions the
# flake uses and no packages (forcing one fails loudly). Names only: nothing is built.
#   nix-instantiate --eval --strict --json nix/tests/flake-outputs.nix
let
  inherit (builtins)
    attrNames
    isFunction
    listToAttrs
    mapAttrs
    stringLength
    substring
    ;

  lib = {
    genAttrs =
      names: f:
      listToAttrs (
        map (name: {
          inherit name;
          value = f name;
        }) names
      );
    optionalAttrs = cond: attrs: if cond then attrs else { };
    hasSuffix =
      suffix: s:
      stringLength s >= stringLength suffix
      && substring (stringLength s - stringLength suffix) (stringLength suffix) s == suffix;
    mkDefault = value: value;
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = throw "flake-outputs.nix has no nixpkgs: only attribute names can be read";
  };

  flake = import ../../flake.nix;
  outputs = flake.outputs {
    self = outputs;
    inherit nixpkgs;
  };
  namesPerSystem = mapAttrs (_: attrNames);

  overlay = outputs.overlays.default {
    callPackage = _: _: "the overlay's loft";
    nodejs_22 = "nodejs";
  } { };
  importsOf = m: if isFunction m then map toString (callModule m).imports else null;
  callModule =
    m:
    m {
      inherit lib;
      pkgs.stdenv.hostPlatform.system = "x86_64-linux";
    };
in
{
  inputs = attrNames flake.inputs;
  outputs = attrNames outputs;
  packages = namesPerSystem outputs.packages;
  devShells = namesPerSystem outputs.devShells;
  checks = namesPerSystem outputs.checks;
  formatter = attrNames outputs.formatter;
  overlays = attrNames outputs.overlays;
  overlayAdds = attrNames overlay;
  nixosModules = attrNames outputs.nixosModules;
  darwinModules = attrNames outputs.darwinModules;
  homeManagerModules = attrNames outputs.homeManagerModules;
  templates = mapAttrs (_: t: {
    path = toString t.path;
    hasDescription = t ? description;
  }) outputs.templates;
  # Functions cannot be compared; what each module imports and sets can.
  moduleImports = mapAttrs (_: modules: mapAttrs (_: importsOf) modules) {
    inherit (outputs) nixosModules darwinModules homeManagerModules;
  };
}
