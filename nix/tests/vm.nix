# NixOS VM test of the module end to end: Garage (from nixpkgs) as the S3 server, the loft service
# uploading a path the server builds (queued by the post-build hook while the service was stopped),
# and a second machine substituting that path over HTTP with the cache's public key as the only
# key it trusts. Needs nixpkgs (and KVM to be quick):
#   nix build .#checks.x86_64-linux.vm -L
#   nix-build -E 'let pkgs = import <nixpkgs> { }; in pkgs.testers.runNixOSTest (import ./nix/tests/vm.nix { })'
{
  # The loft package to test; null: the module's default, built from this repository.
  loftPackage ? null,
}:
{
  name = "loft";

  nodes.server =
    {
      config,
      lib,
      pkgs,
      ...
    }:
    {
      imports = [ ../module.nix ];
      virtualisation.memorySize = 2048;
      nix.settings.experimental-features = [ "nix-command" ];
      environment.systemPackages = [
        config.services.garage.package
        pkgs.sqlite
        pkgs.curl
      ];

      services.garage = {
        enable = true;
        package = pkgs.garage;
        settings = {
          replication_factor = 1;
          rpc_bind_addr = "[::]:3901";
          # A test secret, nothing else shares it.
          rpc_secret = "5c1915fa04d0b6739675c61bf5907eb0fe3d9c69850c83820f51b4d25d13868c";
          s3_api = {
            api_bind_addr = "[::]:3900";
            s3_region = "us-east-1";
            root_domain = ".s3.garage";
          };
          # Garage's website endpoint serves a bucket to anonymous readers: the way Nix reads it here.
          s3_web = {
            bind_addr = "[::]:3902";
            root_domain = ".web.garage";
          };
        };
      };
      networking.firewall.allowedTCPPorts = [ 3902 ];

      services.loft = {
        enable = true;
        s3 = {
          bucket = "loft-cache";
          endpoint = "http://127.0.0.1:3900";
          # Root-only files, as sops-nix or agenix leave them; the test script writes them.
          accessKeyFile = "/run/keys/loft/access-key";
          secretKeyFile = "/run/keys/loft/secret-key";
        };
        signingKeyPath = "/run/keys/loft/signing-key";
        # The VM's own system closure is not what this test is about.
        scanOnStartup = false;
        uploadThreads = 4;
        postBuildHook.enable = true;
      }
      // lib.optionalAttrs (loftPackage != null) { package = loftPackage; };
      # Started by the test script once the bucket and the credentials exist.
      systemd.services.loft.wantedBy = lib.mkForce [ ];
    };

  nodes.client =
    {
      lib,
      nodes,
      pkgs,
      ...
    }:
    {
      networking.hosts.${nodes.server.networking.primaryIPAddress} = [ "loft-cache.web.garage" ];
      nix.settings.experimental-features = [ "nix-command" ];
      # No network to any public cache; the test names its substituter on the command line.
      nix.settings.substituters = lib.mkForce [ ];
      environment.systemPackages = [ pkgs.curl ];
    };

  testScript = ''
    import re


    def find(pattern: str, text: str, group: int = 0) -> str:
        match = re.search(pattern, text)
        assert match is not None, f"{pattern!r} not found in {text!r}"
        return match.group(group)


    start_all()

    with subtest("Garage: one node, a bucket, a key, anonymous reads through the website endpoint"):
        server.wait_for_unit("garage.service")
        server.wait_for_open_port(3900)
        server.wait_for_open_port(3901)
        node_id = find(r"\b[0-9a-f]{16}\b", server.succeed("garage status"))
        server.succeed(f"garage layout assign -z dc1 -c 1G {node_id}")
        server.succeed("garage layout apply --version 1")
        server.succeed("garage bucket create loft-cache")
        key_info = server.succeed("garage key create loft-key")
        access_key = find(r"\bGK[0-9a-f]{24}\b", key_info)
        secret_key = find(r"Secret key:\s*([0-9a-f]{64})", key_info, 1)
        server.succeed("garage bucket allow --read --write --owner loft-cache --key loft-key")
        server.succeed("garage bucket website --allow loft-cache")

    with subtest("secrets as root-only files"):
        server.succeed("install -d -m 0700 /run/keys/loft")
        server.succeed(f"printf %s {access_key} > /run/keys/loft/access-key")
        server.succeed(f"printf %s {secret_key} > /run/keys/loft/secret-key")
        server.succeed("nix key generate-secret --key-name loft-vm-test-1 > /run/keys/loft/signing-key")
        server.succeed("chmod 0600 /run/keys/loft/*")
        public_key = server.succeed(
            "nix key convert-secret-to-public < /run/keys/loft/signing-key"
        ).strip()

    with subtest("the service runs as its own user and its config file holds no secret"):
        server.succeed("systemctl start loft.service")
        server.wait_for_unit("loft.service")
        server.succeed('test "$(systemctl show -P User loft.service)" = loft')
        server.wait_until_succeeds("test -e /var/lib/loft/cache.db", timeout=60)
        exec_start = server.succeed("systemctl show -P ExecStart loft.service")
        config_file = find(r"--config (/nix/store/\S+)", exec_start, 1)
        server.succeed(f"grep -q access_key_file {config_file}")
        for secret in ["access-key", "secret-key", "signing-key"]:
            server.fail(f"grep -F -f /run/keys/loft/{secret} {config_file}")

    with subtest("the post-build hook queues what Nix builds, as the service's user"):
        server.succeed("systemctl stop loft.service")
        out_path = server.succeed(
            "nix-build --no-out-link -E 'derivation { name = \"loft-vm-test\"; "
            + "system = builtins.currentSystem; builder = \"/bin/sh\"; "
            + "args = [ \"-c\" \"echo built for the loft VM test > $out\" ]; }'"
        ).strip()
        queued = server.succeed("sqlite3 /var/lib/loft/cache.db 'SELECT path FROM queue'")
        assert out_path in queued.split(), f"{out_path} was not queued: {queued!r}"
        server.succeed('test "$(stat -c %U /var/lib/loft/cache.db)" = loft')

    with subtest("the service uploads the queued path with a signed narinfo"):
        server.succeed("systemctl start loft.service")
        hash_part = out_path.removeprefix("/nix/store/")[:32]
        server.wait_until_succeeds(
            "curl -fsS -H 'Host: loft-cache.web.garage' "
            + f"http://127.0.0.1:3902/{hash_part}.narinfo | grep -q '^Sig: loft-vm-test-1:'",
            timeout=120,
        )

    with subtest("another machine substitutes the path, and only with the cache's key trusted"):
        client.wait_for_unit("multi-user.target")
        client.succeed("curl -fsS http://loft-cache.web.garage:3902/nix-cache-info")
        other_key = client.succeed(
            "nix key generate-secret --key-name someone-else-1 | nix key convert-secret-to-public"
        ).strip()
        realise = (
            "nix-store --realise {path} --option substituters http://loft-cache.web.garage:3902 "
            + "--option trusted-public-keys {key}"
        )
        client.fail(realise.format(path=out_path, key=other_key))
        client.fail(f"test -e {out_path}")
        client.succeed(realise.format(path=out_path, key=public_key))
        client.succeed(f"grep -q 'built for the loft VM test' {out_path}")
  '';
}
