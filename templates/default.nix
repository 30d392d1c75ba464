# Starting points for `nix flake init -t <loft>#NAME` (flake.nix's `templates` output). Each holds
# a flake.nix to edit: replace the placeholders (bucket, endpoint, secret file paths, host names).
{
  nixos = {
    path = ./nixos;
    description = "A NixOS host that uploads what it builds to an S3 bucket, signed (services.loft)";
  };
  darwin = {
    path = ./darwin;
    description = "A nix-darwin Mac that uploads what it builds to an S3 bucket (launchd daemon loft)";
  };
  home-manager = {
    path = ./home-manager;
    description = "home-manager: two caches, one user service each, each with its own secrets";
  };
  ci = {
    path = ./ci;
    description = "A GitHub workflow that pushes every build of the job with loft's action";
  };
}
