# home-manager with two caches: each gets its own user service (systemd.user.services.loft-<name>
# on Linux, launchd.agents.loft-<name> on macOS), its own loft.toml and its own secret files, so
# the team's token never reaches the process that uploads to your own bucket. No post-build hook
# (Nix takes one only from the system's nix.conf): each service watches /nix/store.
# Edit the placeholders, then `home-manager switch --flake .#alice`.
{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";
  inputs.home-manager.url = "github:nix-community/home-manager";
  inputs.home-manager.inputs.nixpkgs.follows = "nixpkgs";
  inputs.loft.url = "github:OWNER/loft"; # wherever you get loft from
  inputs.loft.inputs.nixpkgs.follows = "nixpkgs";

  outputs =
    { nixpkgs, home-manager, loft, ... }:
    {
      homeConfigurations.alice = home-manager.lib.homeManagerConfiguration {
        pkgs = nixpkgs.legacyPackages.x86_64-linux; # or aarch64-darwin
        modules = [
          loft.homeManagerModules.default
          {
            home.username = "alice";
            home.homeDirectory = "/home/alice";
            home.stateVersion = "25.05";
            # Secret files: mode 0600, owned by you, outside the store (sops-nix, agenix, ...).
            services.loft.caches = {
              personal = {
                s3.bucket = "alice-nix-cache";
                s3.accessKeyFile = "/home/alice/.secrets/s3-access-key";
                s3.secretKeyFile = "/home/alice/.secrets/s3-secret-key";
                signingKeyPath = "/home/alice/.secrets/alice-cache-key";
              };
              team = {
                http.url = "https://cache.example.org/team";
                http.tokenFile = "/home/alice/.secrets/team-cache-token";
                signingKeyPath = "/home/alice/.secrets/team-cache-key";
                compression = "xz";
              };
            };
          }
        ];
      };
    };
}
