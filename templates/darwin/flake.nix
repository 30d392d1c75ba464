# A Mac under nix-darwin that uploads every path it builds to an S3 bucket, signed: a launchd daemon
# `loft` (root), its log in /var/log/loft.log. Edit the placeholders, then
# `darwin-rebuild switch --flake .#mac`. Keep the secret files root-only (chmod 0600) and outside
# the store: on macOS there are no systemd credentials, loft reads them where they are.
{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
  inputs.nix-darwin.url = "github:nix-darwin/nix-darwin";
  inputs.nix-darwin.inputs.nixpkgs.follows = "nixpkgs";
  inputs.loft.url = "github:OWNER/loft"; # wherever you get loft from
  inputs.loft.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { nix-darwin, loft, ... }:
    {
      darwinConfigurations.mac = nix-darwin.lib.darwinSystem {
        system = "aarch64-darwin";
        modules = [
          loft.darwinModules.default
          {
            system.stateVersion = 6;
            services.loft = {
              enable = true;
              s3 = {
                bucket = "nix-cache";
                endpoint = "https://s3.example.org"; # remove for AWS S3
                accessKeyFile = "/var/root/secrets/loft-s3-access-key";
                secretKeyFile = "/var/root/secrets/loft-s3-secret-key";
              };
              signingKeyPath = "/var/root/secrets/loft-signing-key";
              # Needs nix-darwin to manage Nix (nix.enable = true, the default): it writes nix.conf.
              postBuildHook.enable = true;
            };
          }
        ];
      };
    };
}
