# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_podman_btrfs_advise_global_optspecs
    string join \n v/verbose log-format= h/help V/version
end

function __fish_podman_btrfs_advise_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_podman_btrfs_advise_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_podman_btrfs_advise_using_subcommand
    set -l cmd (__fish_podman_btrfs_advise_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -s V -l version -d 'Print version'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "plan" -d 'Plan a host: storage driver, btrfs subvolumes, mount options and attributes'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "scan" -d 'Read a live Podman host: images, containers and volumes, their classes and sizes, and where their data lies'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "check" -d 'Check a disko.nix and a containers/storage.conf against each other and against the rules of btrfs and Podman'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "storage-conf" -d 'Show, diff or apply the storage.conf a plan wants on this host'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "explain" -d 'Explain a `check` rule: what it checks, why it matters, an example and the fix'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "serve" -d 'Run the volume plugin daemon: each volume its own btrfs subvolume, plus drift watchers'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "migrate" -d 'Move this host\'s container data to the planned layout, in place or onto a new disk, losing nothing'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "snapshot" -d 'Take read-only btrfs snapshots of volumes while the containers using them are paused'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "restore" -d 'Put a snapshot taken by `snapshot` back in place of a volume\'s data'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "bench" -d 'Measure this host\'s storage choices on its own disk: database-like I/O, compression and a real Podman on the overlay and btrfs drivers'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l spec -d 'Workload spec file (TOML) describing the host and what it runs' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l example -d 'Use an embedded example spec instead of a file (see --list-examples)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l url -d 'Podman socket for --from-host, e.g. unix:///run/podman/podman.sock' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l strategy -d 'Trade-off between speed and checksums/snapshots' -r -f -a "balanced\t'NOCOW only for data rewritten in place; zstd everywhere else'
performance\t'Also NOCOW image-copy temp space and no compression on image storage'
reliability\t'Copy-on-write and checksums everywhere unless a class is declared explicitly; overlay driver; a snapshots subvolume'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l disk -d 'Block device to lay out, overriding the spec\'s `host.disk` (e.g. /dev/disk/by-id/…). Refused (exit 2) when something on this machine uses it: a mount, swap, LVM, LUKS, md RAID or a loop device' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l mode -d 'whole-disk (ESP, system and container subvolumes) or data-disk (container subvolumes only), overriding the spec\'s `host.mode`' -r -f -a "whole-disk\t''
data-disk\t''"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l out -d 'Directory to write the files into (created if missing)' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l bench -d 'A report of `bench --out FILE` measured on this disk: decisions cite its figures, and they choose the storage driver when the drivers differ clearly (see below)' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l database-fs -d 'Performance strategy only: database-class data on a partition of its own with this filesystem, beside the btrfs partition (PLAN.md says what that gives up)' -r -f -a "xfs\t''
ext4\t''"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l list-examples -d 'List the embedded examples and exit'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l from-host -d 'Plan from what the live host runs (the default without --spec and --example). The mode defaults to data-disk. Pass --disk with an unused disk: graphroot\'s own disk is in use, so without --disk no disk is chosen (exit 2)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l no-sizes -d 'With --from-host: do not walk volume directories for their sizes'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -l force -d 'Replace existing files in --out (each is first kept as NAME.YYYYMMDDTHHMMSSZ.bak, with a counter, NAME.YYYYMMDDTHHMMSSZ.N.bak, when that name is taken)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -l url -d 'Podman socket, e.g. unix:///run/podman/podman.sock or tcp://host:port' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -l jobs -d 'How many volumes to measure at once' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -l no-sizes -d 'Skip measuring volumes (walks and qgroup reads)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand scan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l disko -d 'The disko configuration to check' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l storage-conf -d 'The containers/storage.conf to check' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l config-root -d 'Like --host-storage, with /etc/containers and /usr/share/containers read below DIR' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l podman-version -d 'The Podman version whose file rules apply with --host-storage or --config-root (default: `podman --version`; before 6 when unknown)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l containers-conf -d 'containers.conf, for `volume_path`' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l arg -d 'Pass the Nix expression EXPR as argument NAME to a function-style disko.nix, as disko\'s own CLI does (e.g. `--arg disks \'[ "/dev/sda" ]\'`). Repeatable' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l argstr -d 'Pass the string VALUE as argument NAME to a function-style disko.nix (e.g. `--argstr disk /dev/nvme0n1`). Repeatable' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l attr -d 'Where the disko configuration is in the file\'s value, as a dotted attribute path (e.g. `flake.diskoConfigurations.host`); by default the file\'s value itself' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l deny -d 'Fail (exit 1) on warnings too, not only on errors' -r -f -a "warnings\t'Warnings fail the check like errors'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l host-storage -d 'Check every storage.conf file Podman reads here for you: the one file before Podman 6; from 6 the main file, its drop-ins and CONTAINERS_STORAGE_CONF_OVERRIDE (see `storage-conf --help`). Each file is checked on its own'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l live -d 'Also compare the disko file with this host\'s mounts and subvolume attributes'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -l no-eval -d 'Read disko.nix statically even when nix-instantiate is installed'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -f -a "show" -d 'Every storage.conf file read for you, and each effective key with its origin'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -f -a "diff" -d 'The unified diff from the current file to the plan\'s settings'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -f -a "apply" -d 'Change the file (or, on Podman 6, write a drop-in) to the plan\'s settings'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and not __fish_seen_subcommand_from show diff apply help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l file -d 'Edit this file alone, as if CONTAINERS_STORAGE_CONF named it' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l podman-version -d 'The Podman version whose rules apply, e.g. 5.4 or 6.0 (default: from --url, else `podman --version`; when neither answers, the rules before 6 are assumed and said)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l url -d 'Podman socket: its version chooses the rules, and `apply` asks it whether the store is populated (else the store\'s files are read)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l config-root -d 'Read /etc/containers and /usr/share/containers below DIR instead (a chroot, an image being built, tests). The user\'s own directories still come from XDG_CONFIG_HOME or HOME' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -l rootless -d 'Resolve as a rootless user would (default: as the current user)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l plan -d 'A directory written by `plan --out`; its storage.conf holds the planned settings' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l file -d 'Edit this file alone, as if CONTAINERS_STORAGE_CONF named it' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l podman-version -d 'The Podman version whose rules apply, e.g. 5.4 or 6.0 (default: from --url, else `podman --version`; when neither answers, the rules before 6 are assumed and said)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l url -d 'Podman socket: its version chooses the rules, and `apply` asks it whether the store is populated (else the store\'s files are read)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l config-root -d 'Read /etc/containers and /usr/share/containers below DIR instead (a chroot, an image being built, tests). The user\'s own directories still come from XDG_CONFIG_HOME or HOME' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -l rootless -d 'Resolve as a rootless user would (default: as the current user)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l plan -d 'A directory written by `plan --out`; its storage.conf holds the planned settings' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l file -d 'Edit this file alone, as if CONTAINERS_STORAGE_CONF named it' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l podman-version -d 'The Podman version whose rules apply, e.g. 5.4 or 6.0 (default: from --url, else `podman --version`; when neither answers, the rules before 6 are assumed and said)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l url -d 'Podman socket: its version chooses the rules, and `apply` asks it whether the store is populated (else the store\'s files are read)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l config-root -d 'Read /etc/containers and /usr/share/containers below DIR instead (a chroot, an image being built, tests). The user\'s own directories still come from XDG_CONFIG_HOME or HOME' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l rootless -d 'Resolve as a rootless user would (default: as the current user)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -l dry-run -d 'Show what would change and write nothing'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from help" -f -a "show" -d 'Every storage.conf file read for you, and each effective key with its origin'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from help" -f -a "diff" -d 'The unified diff from the current file to the plan\'s settings'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Change the file (or, on Podman 6, write a drop-in) to the plan\'s settings'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand storage-conf; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand explain" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand explain" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand explain" -l list -d 'List every rule with its code, severity and a one-line summary'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand explain" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l socket -d 'The plugin\'s unix socket (mode 0600); register it in containers.conf' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l root -d 'Directory on btrfs that holds the volumes (ROOT/CLASS/NAME); created if missing' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l plugin-name -d 'The name the plugin is registered under in containers.conf (`--driver NAME`)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l url -d 'Podman API socket for the events watcher [default: as `scan`: CONTAINER_HOST, then /run/podman/podman.sock for root]' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l storage-conf -d 'storage.conf to watch [default: the file Podman reads, see `storage-conf show`]' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l containers-conf -d 'containers.conf to watch [default: CONTAINERS_CONF, else /etc/containers/containers.conf]' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l disko -d 'A disko.nix to check together with storage.conf on every change' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l no-events -d 'Do not follow Podman\'s events'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l no-watch -d 'Do not watch configuration files'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -l remove-with-snapshots -d 'Let `podman volume rm` remove a volume that still has snapshots (taken by `snapshot`, in CLASS/.snapshots): the volume goes, its snapshots stay. Without it such a removal is refused, so no snapshot is left without its volume by accident'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l url -d 'Podman socket, e.g. unix:///run/podman/podman.sock (else CONTAINER_HOST, else the default)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l strategy -d 'Trade-off between speed and checksums/snapshots, as for `plan`' -r -f -a "balanced\t'NOCOW only for data rewritten in place; zstd everywhere else'
performance\t'Also NOCOW image-copy temp space and no compression on image storage'
reliability\t'Copy-on-write and checksums everywhere unless a class is declared explicitly; overlay driver; a snapshots subvolume'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l plan -d 'Follow a plan written by `plan --out DIR` (its plan.json) instead of planning now' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l to-disk -d 'Move graphroot and the volumes whose class gets a subvolume of its own onto DEV, a btrfs block device (made by the plan\'s disko.nix, or an empty one; never formatted here), mounted at the same paths. Data on ext4 or xfs moves this way' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l mounts -d 'With --to-disk: where the persistent mounts are written (auto: nixos when /etc/NIXOS exists, else fstab; none: shown, not written)' -r -f -a "auto\t'NixOS when /etc/NIXOS exists, else fstab'
fstab\t''
systemd\t''
nixos\t''
none\t'Write nothing: the entries are shown, to be added by hand'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l fstab -d 'With --to-disk --mounts fstab: the fstab to add the mounts to (backed up first)' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l unit-dir -d 'With --to-disk --mounts systemd: where the .mount units go' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l nixos-file -d 'With --to-disk --mounts nixos: the NixOS module with the fileSystems entries' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l state-dir -d 'Where the journal and its lock live' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l dry-run -d 'Print the steps and the space they need; change nothing'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -s y -l yes -d 'Do not ask before starting (needed without a terminal)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l resume -d 'Continue an interrupted migration'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l rollback -d 'Return to exactly the original state (from any point before --finalize)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l status -d 'Show where the migration stands'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -l finalize -d 'Verify the old data against the live data once more, then delete it'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l scheduled -d 'Snapshot every volume whose class is scheduled this often (the class table\'s schedule: hourly for database and vm, …), for a timer to run. A volume that cannot be snapshotted (not a subvolume, a class label that names no class, a container that cannot be paused, a snapshot btrfs refuses) is reported, the others are still taken, and the exit code is 3' -r -f -a "hourly\t''
daily\t''
weekly\t''"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l url -d 'Podman socket, e.g. unix:///run/podman/podman.sock (else CONTAINER_HOST, else the default)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l stop -d 'Stop (and start again) a container that cannot be paused, instead of refusing'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l force -d 'Snapshot also volumes of a class that is never snapshotted (cache)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l list -d 'List the snapshots of the volumes (of every volume without VOLUME); take none'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -l prune -d 'Delete the snapshots the volumes\' class policy no longer keeps (shown only, without --yes)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -s y -l yes -d 'With --prune: delete; without it --prune only shows what it would delete'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand snapshot" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand restore" -l url -d 'Podman socket, e.g. unix:///run/podman/podman.sock (else CONTAINER_HOST, else the default)' -r
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand restore" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand restore" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand restore" -s y -l yes -d 'Do it; without --yes the steps are printed and nothing changes'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand restore" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l dir -d 'A directory on the btrfs filesystem to measure (default: graphroot, as containers/storage resolves it for you)' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l out -d 'Write the report (JSON) to FILE, atomically; a FILE already there is kept as a timestamped backup' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l svg -d 'Draw the figures into an SVG chart at FILE (same rules as --out)' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l compare-dir -d 'Also measure database-like I/O in this directory of another filesystem (ext4, xfs) to compare with' -r -F
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l format -d 'Output format on stdout' -r -f -a "human\t'For people'
json\t'One JSON document with a stable schema (see `plan --help`)'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l log-format -d 'Log lines on stderr as text or as one JSON object each' -r -f -a "text\t'`LEVEL target: message key=value …`'
json\t'One JSON object a line, fields included'"
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l quick -d 'Fewer, shorter rounds: under a minute instead of about six (both measured on a loop disk; a slow disk takes longer)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l no-containers -d 'Leave out the container part (a real Podman on the overlay and btrfs drivers)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -l clean -d 'Remove what a killed run left (.podfs-bench-* in DIR and --compare-dir, and only that) instead of measuring'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -s v -l verbose -d 'More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "plan" -d 'Plan a host: storage driver, btrfs subvolumes, mount options and attributes'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "scan" -d 'Read a live Podman host: images, containers and volumes, their classes and sizes, and where their data lies'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "check" -d 'Check a disko.nix and a containers/storage.conf against each other and against the rules of btrfs and Podman'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "storage-conf" -d 'Show, diff or apply the storage.conf a plan wants on this host'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "explain" -d 'Explain a `check` rule: what it checks, why it matters, an example and the fix'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "serve" -d 'Run the volume plugin daemon: each volume its own btrfs subvolume, plus drift watchers'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "migrate" -d 'Move this host\'s container data to the planned layout, in place or onto a new disk, losing nothing'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "snapshot" -d 'Take read-only btrfs snapshots of volumes while the containers using them are paused'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "restore" -d 'Put a snapshot taken by `snapshot` back in place of a volume\'s data'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "bench" -d 'Measure this host\'s storage choices on its own disk: database-like I/O, compression and a real Podman on the overlay and btrfs drivers'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and not __fish_seen_subcommand_from plan scan check storage-conf explain serve migrate snapshot restore bench help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and __fish_seen_subcommand_from storage-conf" -f -a "show" -d 'Every storage.conf file read for you, and each effective key with its origin'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and __fish_seen_subcommand_from storage-conf" -f -a "diff" -d 'The unified diff from the current file to the plan\'s settings'
complete -c podman-btrfs-advise -n "__fish_podman_btrfs_advise_using_subcommand help; and __fish_seen_subcommand_from storage-conf" -f -a "apply" -d 'Change the file (or, on Podman 6, write a drop-in) to the plan\'s settings'
