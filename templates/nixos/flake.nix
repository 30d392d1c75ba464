# A NixOS host that uploads every path it builds to an S3 bucket, signed. Edit the placeholders,
# then `nixos-rebuild switch --flake .#builder`. Secrets stay in root-only files outside the store
# (sops-nix, agenix, or by hand: install -m 0600 ...); the service gets them as systemd credentials.
{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  inputs.loft.url = "github:OWNER/loft"; # wherever you get loft from
  inputs.loft.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { nixpkgs, loft, ... }:
    {
      nixosConfigurations.builder = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          loft.nixosModules.default
          ./hardware-configuration.nix # yours
          {
            services.loft = {
              enable = true;
              s3 = {
                bucket = "nix-cache";
                endpoint = "https://s3.example.org"; # remove for AWS S3
                region = "us-east-1";
                accessKeyFile = "/run/secrets/loft-s3-access-key";
                secretKeyFile = "/run/secrets/loft-s3-secret-key";
              };
              # nix key generate-secret --key-name cache.example.org-1 > /run/secrets/loft-signing-key
              signingKeyPath = "/run/secrets/loft-signing-key";
              # Hand each build to loft at once (the store watcher would find it too).
              postBuildHook.enable = true;
            };
          }
        ];
      };
    };
}
