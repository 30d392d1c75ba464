# A flake for the workflow in .github/workflows/nix.yml to build: replace it with your own, or keep
# your existing flake.nix and copy only the workflow.
{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  outputs =
    { nixpkgs, ... }:
    {
      packages.x86_64-linux.default = nixpkgs.legacyPackages.x86_64-linux.hello;
    };
}
