# The serviceConfig every loft unit of the NixOS module shares: restarts, and a sandbox that leaves
# the service its state and cache directories to write, the store and the Nix database to read,
# and the network. Plain data, so it evaluates without nixpkgs.
{
  UMask = "0077";
  Restart = "on-failure";
  RestartSec = "10s";
  # 2 (usage) and 3 (configuration) cannot heal by themselves; see `loft --help`.
  RestartPreventExitStatus = "2 3";

  # Read-only everywhere except its state and cache directories; the store and the Nix
  # database are only read (the daemon socket still connects: sockets ignore read-only mounts).
  ProtectSystem = "strict";
  ReadOnlyPaths = [ "/nix" ];
  ProtectHome = true;
  PrivateTmp = true;
  PrivateDevices = true;
  DevicePolicy = "closed";
  NoNewPrivileges = true;
  CapabilityBoundingSet = "";
  AmbientCapabilities = "";
  RestrictSUIDSGID = true;
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  ProtectProc = "invisible";
  RestrictAddressFamilies = [
    "AF_UNIX"
    "AF_INET"
    "AF_INET6"
  ];
  RestrictNamespaces = true;
  RestrictRealtime = true;
  LockPersonality = true;
  RemoveIPC = true;
  SystemCallArchitectures = "native";
  SystemCallFilter = [
    "@system-service"
    "~@privileged"
  ];
  # A call outside the filter fails instead of killing the process (Node probes optional ones).
  SystemCallErrorNumber = "EPERM";
  # Not MemoryDenyWriteExecute: V8's JIT needs memory that is writable and executable.
}
