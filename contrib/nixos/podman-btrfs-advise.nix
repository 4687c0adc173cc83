# NixOS module for the podfs volume plugin: runs `podman-btrfs-advise serve` before
# Podman and registers the plugin in containers.conf.
#
#   imports = [ ./podman-btrfs-advise.nix ];
#   services.podman-btrfs-advise = {
#     enable = true;
#     package = podman-btrfs-advise;   # the package built from this repository
#     disko = "/etc/nixos/disko.nix";
#   };
#
# Then `podman volume create --driver podfs --opt class=database pg` makes the volume a
# btrfs subvolume <root>/database/pg.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf types optional optionals escapeShellArgs;
  cfg = config.services.podman-btrfs-advise;

  args =
    [ "serve" "--socket" cfg.socket "--root" cfg.root "--plugin-name" cfg.pluginName ]
    ++ optionals (cfg.podmanSocket != null) [ "--url" cfg.podmanSocket ]
    ++ optional (!cfg.events) "--no-events"
    ++ optionals (cfg.disko != null) [ "--disko" cfg.disko ]
    ++ optional (!cfg.watch) "--no-watch"
    ++ cfg.extraArgs;

  # Containers of virtualisation.oci-containers run `podman run` from units of their own
  # at boot; their plugin volumes need the plugin up first.
  ociContainers = config.virtualisation.oci-containers or { };
  ociUnit = name: "${ociContainers.containers.${name}.serviceName or "podman-${name}"}.service";
  ociUnits =
    optionals ((ociContainers.backend or "podman") == "podman")
      (map ociUnit (builtins.attrNames (ociContainers.containers or { })));
in
{
  options.services.podman-btrfs-advise = {
    enable = mkEnableOption "the podfs Podman volume plugin (podman-btrfs-advise serve)";

    package = mkOption {
      type = types.package;
      default = pkgs.podman-btrfs-advise or (throw
        "services.podman-btrfs-advise.package: set it to the podman-btrfs-advise package; pkgs has no podman-btrfs-advise");
      defaultText = { _type = "literalExpression"; text = "pkgs.podman-btrfs-advise"; };
      description = ''
        The podman-btrfs-advise package. Its `bin/podman-btrfs-advise` runs the daemon
        and is installed system-wide for `scan`, `plan` and `check`.
      '';
    };

    socket = mkOption {
      type = types.str;
      default = "/run/podman-btrfs-advise/podfs.sock";
      description = ''
        Unix socket the plugin listens on (mode 0600; its directory is created if
        missing). Registered under `pluginName` in containers.conf.
      '';
    };

    root = mkOption {
      type = types.str;
      default = "/var/lib/containers/podfs";
      description = ''
        Directory on btrfs that holds the volumes: each becomes the subvolume
        `<root>/<class>/<name>`. Created with mode 0700 by systemd-tmpfiles; the service
        waits for the filesystem that holds it to be mounted. Not below /usr, /etc or
        /home: the service sees those read-only.
      '';
    };

    pluginName = mkOption {
      type = types.str;
      default = "podfs";
      description = ''
        Name of the plugin in `[engine.volume_plugins]` of containers.conf, used as
        `podman volume create --driver <pluginName>`; the daemon gets it as
        `--plugin-name` to pick its volumes out of Podman's events.
      '';
    };

    podmanSocket = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "unix:///run/podman/podman.sock";
      description = ''
        Podman API socket the events watcher connects to (`--url`). `null` finds it like
        Podman does: `/run/podman/podman.sock` for root.
      '';
    };

    events = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to follow Podman's events. `false` passes `--no-events`.
      '';
    };

    watch = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether to watch storage.conf, containers.conf and the disko configuration with
        inotify and re-check them when they change. `false` passes `--no-watch`.
      '';
    };

    disko = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/etc/nixos/disko.nix";
      description = ''
        Absolute path of the host's disko configuration, checked at start and on change
        (`--disko`). A string, so the file is read where it lies on the host and not
        copied into the Nix store.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--storage-conf" "/etc/containers/storage.conf" ];
      description = ''
        Further arguments to `podman-btrfs-advise serve`, such as `--storage-conf` or
        `--containers-conf`.
      '';
    };
  };

  config = mkIf cfg.enable {
    virtualisation.containers.containersConf.settings.engine.volume_plugins.${cfg.pluginName} = cfg.socket;

    environment.systemPackages = [ cfg.package ];

    systemd.tmpfiles.rules = [ "d ${cfg.root} 0700 root root -" ];

    systemd.services.podman-btrfs-advise = {
      description = "podfs volume plugin for Podman on btrfs";
      wantedBy = [ "multi-user.target" ];
      before = [ "podman.service" "podman-restart.service" ] ++ ociUnits;
      after = [ "local-fs.target" ];
      unitConfig.RequiresMountsFor = cfg.root;
      serviceConfig = {
        Type = "notify";
        ExecStart = "${cfg.package}/bin/podman-btrfs-advise ${escapeShellArgs args}";
        RuntimeDirectory = "podman-btrfs-advise";
        RuntimeDirectoryMode = "0700";
        Restart = "on-failure";
        RestartSec = "2s";

        # The same hardening as contrib/systemd/podman-btrfs-advise.service: the
        # service runs as root for the btrfs subvolume ioctls, and everything outside
        # /usr, /boot, /efi, /etc and the home directories stays writable for subvolumes.
        ProtectSystem = "full";
        ProtectHome = "read-only";
        PrivateTmp = true;
        NoNewPrivileges = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        RestrictRealtime = true;
        LockPersonality = true;
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
      };
    };
  };
}
