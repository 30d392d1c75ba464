{
  description = "loft: upload a Nix store to an S3-compatible binary cache, signed, closure by closure";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      isLinux = lib.hasSuffix "-linux";
      # Node 24 LTS: Node 20 is past its end of life, and the AWS SDK's releases from 2027 on need 22.
      loftFor = pkgs: pkgs.callPackage ./nix/package.nix { nodejs = pkgs.nodejs_24; };
      withPackage =
        module:
        { lib, pkgs, ... }:
        {
          imports = [ module ];
          services.loft.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.loft;
        };
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          loft = loftFor pkgs;
          default = self.packages.${system}.loft;
        }
      );

      overlays.default = final: _prev: { loft = loftFor final; };

      # Each module alone (nix/module.nix, ...) builds loft with the system's nixpkgs; through the
      # flake it defaults to this flake's package.
      nixosModules.loft = withPackage ./nix/module.nix;
      nixosModules.default = self.nixosModules.loft;
      darwinModules.loft = withPackage ./nix/darwin-module.nix;
      darwinModules.default = self.darwinModules.loft;
      homeManagerModules.loft = withPackage ./nix/home-manager-module.nix;
      homeManagerModules.default = self.homeManagerModules.loft;

      # nix flake init -t <loft>#NAME
      templates = import ./templates;

      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            packages = [
              pkgs.nodejs_24
              pkgs.nix
              pkgs.zstd
              pkgs.xz
              pkgs.python3
            ];
          };
        }
      );

      checks = forAllSystems (
        system: pkgs:
        {
          package = self.packages.${system}.loft;
          # Type check and unit tests; the integration tests need a real Nix store and run outside.
          unit-tests = self.packages.${system}.loft.unitTests;
        }
        // lib.optionalAttrs (isLinux system) {
          vm = pkgs.testers.runNixOSTest (
            import ./nix/tests/vm.nix { loftPackage = self.packages.${system}.loft; }
          );
        }
      );

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-rfc-style);
    };
}
