function __ferry_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ferry_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ferry_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ferry_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ferry_parse_tokens -S
    set -l unparsed_tokens (__ferry_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ferry'
        __ferry_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'copy'
            __ferry_parse_subcommand 2 'source-format=' 'allow-backing=+' 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'target-format=' 'size=' 'overwrite' 'target-is-zero' 'verify' 'fix' 'digest=' 'workers=' 'progress=' 'version' 'h/help'
        case 'checksum'
            __ferry_parse_subcommand -r 1 'source-format=' 'allow-backing=+' 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'size=' 'digest=' 'progress=' 'version' 'h/help'
        case 'send'
            __ferry_parse_subcommand -r 1 'code=' 'insecure' 'progress=' 'retry-for=' 'source-format=' 'allow-backing=+' 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'limit=' 'compress=' 'digest=' 'sync' 'raw' 'workers=' 'request-size=' 'version' 'h/help'
        case 'receive'
            __ferry_parse_subcommand -r 1 'listen=' 'code=' 'insecure' 'progress=' 'retry-for=' 'overwrite' 'sync' 'target-format=' 'raw' 'size=' 'stdin' 'fix' 'version' 'h/help'
        case 'inspect'
            __ferry_parse_subcommand 1 'json' 'source-format=' 'allow-backing=+' 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'version' 'h/help'
        case 'fix'
            __ferry_parse_subcommand 1 'only=+' 'dry-run' 'undo-file=' 'undo=' 'force' 'json' 'version' 'h/help'
        case 'demo'
            __ferry_parse_subcommand 0 'directory=' 'keep' 'version' 'h/help'
        case 'plan'
            __ferry_parse_subcommand -r 1 'vmx=' 'target=' 'json' 'bridge=' 'ganeti-node=' 'ganeti-os=' 'vmid=' 'storage=' 'source-format=' 'allow-backing=+' 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'version' 'h/help'
        case 'explain'
            __ferry_parse_subcommand -r 1 'list' 'json' 'version' 'h/help'
        case 'serve'
            __ferry_parse_subcommand -r 1 'nbd=' 'writable' 'run=' 'socket-activation' 'tls-certificates=' 'tls-verify-peer' 'tls-psk=' 'source-format=' 'allow-backing=+' 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'version' 'h/help'
        case 'esxi'
            __ferry_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'ls'
                __ferry_parse_subcommand 1 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'json' 'version' 'h/help'
            case 'report'
                __ferry_parse_subcommand 1 'password-file=' 'esxi-fingerprint=' 'esxi-insecure' 'force' 'json' 'version' 'h/help'
            end
        case 'help'
            __ferry_parse_subcommand -r 1 'version'
        end
    end
end

function __ferry_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ferry_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __ferry_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ferry_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ferry_tokens -p)
    if test -z "$(__ferry_tokens -t)"
        set -l index (count (__ferry_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ferry' -f
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'copy' -d 'Copy a disk or image to a file, a block device, or standard output.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'checksum' -d 'Print the disk digest of each path, like sha256sum.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'send' -d 'Send disks to a waiting `ferry receive`, encrypted and verified.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'receive' -d 'Wait for `ferry send` and write the disks it sends into TARGET(s).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'inspect' -d 'Inspect a guest disk: partitions, file systems, Windows boot facts and verdicts.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'fix' -d 'Fix a copied Windows guest offline so that it boots on KVM (MergeIDE and friends), with an undo file.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'demo' -d 'Run the migration story in miniature on a generated sample VM disk, explaining each step.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'plan' -d 'Write the target VM\'s configuration (Ganeti, libvirt, Proxmox, QEMU) from the .vmx and the guest\'s disks.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'explain' -d 'Explain a boot error of a migrated guest (0x7B, 0x0A, "NTLDR is missing", GRUB rescue…) and its fix.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'serve' -d 'Export disks over NBD, for nbdcopy, qemu-img, qemu, nbdinfo and the kernel\'s nbd-client.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'esxi' -d 'An ESXi host seen through its vSphere API: its VMs, their disks and power state.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" format source-format' -l 'source-format' -l 'format' -d 'Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy"' -l 'allow-backing' -d 'Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" target-format' -l 'target-format' -d 'Target format (raw or qcow2). By default the name decides: .qcow2 is qcow2, a .vmdk/.vhd/.vhdx/.ova name is refused (ferry cannot write those yet), anything else is raw.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" size' -l 'size' -d 'Size of a source read from standard input (e.g. 50G).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" overwrite' -l 'overwrite' -d 'Replace an existing non-empty target file.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" target-is-zero' -l 'target-is-zero' -d 'Promise that the target already reads as zeros, so zero runs are skipped.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" verify' -l 'verify' -d 'Re-read the target after the copy and compare its digest with the source\'s.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" fix' -l 'fix' -d 'After the copy, read the target back (as --verify) and apply ferry fix\'s default steps to it (a raw or qcow2 file, or a block device).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" digest' -l 'digest' -d 'Block hash of the digest: xxh3 (the default where libxxhash.so.0 is installed, else sha256; printed as xxh3:HEX, the value `ferry checksum` prints) or sha256 (blkhash/blksum/`nbdcopy --blkhash`-compatible).' -rfka 'sha256 xxh3'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" workers' -l 'workers' -d 'Requests in flight (default: one per core, at least 2).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" progress' -l 'progress' -d 'Progress display: auto (a live line on a terminal, nothing otherwise), tty, json (JSON lines on stderr), none.' -rfka 'none tty json auto'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry copy" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" format source-format' -l 'source-format' -l 'format' -d 'Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum"' -l 'allow-backing' -d 'Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" size' -l 'size' -d 'Size of standard input, when a path is -.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" digest' -l 'digest' -d 'Block hash: xxh3 (the default where libxxhash.so.0 is installed, else sha256; what `ferry copy` and `ferry send` print) or sha256 (blkhash/blksum-compatible, bare hex).' -rfka 'sha256 xxh3'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" progress' -l 'progress' -d 'Progress display: auto (a live line on a terminal, nothing otherwise), tty, json (JSON lines on stderr), none.' -rfka 'none tty json auto'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry checksum" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" code' -l 'code' -d 'The pairing code (16 symbols, e.g. 7kqm-2xrt-9pfa-w3ne). The receiver makes one up when omitted.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" insecure' -l 'insecure' -d 'Plain TCP without pairing or encryption. Both sides must pass it; use only on a trusted link or inside ssh.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" progress' -l 'progress' -d 'Progress display: auto (a live line on a terminal, nothing otherwise), tty, json (JSON lines on stderr), none.' -rfka 'none tty json auto'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" retry-for' -l 'retry-for' -d 'After a dropped connection, reconnect and resume until this long after the last progress (e.g. 30s, 5m, 1h; 0 to fail at once).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" format source-format' -l 'source-format' -l 'format' -d 'Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send"' -l 'allow-backing' -d 'Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" limit' -l 'limit' -d 'Bandwidth limit in bytes per second (e.g. 100M or 100M/s).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" compress' -l 'compress' -d 'Per-chunk compression: auto (by compressibility and bottleneck), none, zstd, lz4, gzip.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" digest' -l 'digest' -d 'Block hash: xxh3 (fast; the default, used when the receiver has it too) or sha256 (the digest blksum and `ferry checksum --digest sha256` print).' -rfka 'sha256 xxh3'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" sync' -l 'sync' -d 'Delta sync (warm migration): a receiver run with --sync that holds an earlier copy is sent only the blocks that differ (block hashes keyed XXH3-128 with a key the receiver draws per pass, or SHA-256 with --digest sha256). Repeat while the guest runs; only the pass after shutdown is the migration.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" raw' -l 'raw' -d 'Send a plain byte stream (no protocol, no encryption) to a plain `nc -l PORT > disk.img`.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" workers' -l 'workers' -d 'Requests read and hashed at once (each holds one request in memory).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" request-size' -l 'request-size' -d 'Bytes per request (64K to 4M).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry send" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" listen' -l 'listen' -d 'Address and port to listen on (default 0.0.0.0:9000).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" code' -l 'code' -d 'The pairing code (16 symbols, e.g. 7kqm-2xrt-9pfa-w3ne). The receiver makes one up when omitted.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" insecure' -l 'insecure' -d 'Plain TCP without pairing or encryption. Both sides must pass it; use only on a trusted link or inside ssh.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" progress' -l 'progress' -d 'Progress display: auto (a live line on a terminal, nothing otherwise), tty, json (JSON lines on stderr), none.' -rfka 'none tty json auto'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" retry-for' -l 'retry-for' -d 'After a dropped connection, reconnect and resume until this long after the last progress (e.g. 30s, 5m, 1h; 0 to fail at once).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" overwrite' -l 'overwrite' -d 'Replace existing non-empty target files.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" sync' -l 'sync' -d 'Delta sync (warm migration): with `ferry send --sync`, a target that already holds a copy of the disk is updated in place and only the blocks that differ cross the link (implies --overwrite).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" target-format' -l 'target-format' -d 'Target format, when the targets\' names should not decide it (a name ending .qcow2 is written as qcow2).' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" raw' -l 'raw' -d 'Accept a plain byte stream (`dd if=/dev/sda | nc HOST PORT`): progress, zero elision and a digest, but no pairing or verification.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" size' -l 'size' -d 'With --raw: the disk size in bytes (needed for file targets; a block device knows its size).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" stdin' -l 'stdin' -d 'Read the stream from stdin (`ferry send SOURCE - | ssh host ferry receive TARGET --stdin`); ssh provides the security.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" fix' -l 'fix' -d 'After the disks are received and verified, apply ferry fix\'s default steps to each target that holds Windows (raw or qcow2 targets, block devices).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry receive" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" format source-format' -l 'source-format' -l 'format' -d 'Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect"' -l 'allow-backing' -d 'Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry inspect" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix"' -l 'only' -d 'Run only these steps.' -rfka 'mergeide virtio-storage crash-visible ntfs-geometry cpu-drivers'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" dry-run' -l 'dry-run' -d 'Print the plan and change nothing.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" undo-file' -l 'undo-file' -d 'Where to write the undo file (default: DISK.ferry-undo beside a file, /var/lib/ferry/undo/NAME.ferry-undo for a device).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" undo' -l 'undo' -d 'Restore the disk from this undo file instead of fixing it.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" force' -l 'force' -d 'Write even though the NTFS volume is dirty, hibernated or its journal open (never for a dirty hive).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" json' -l 'json' -d 'Print the plan and the result as JSON.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry fix" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry demo" directory' -l 'directory' -d 'Directory for the demo\'s files (default: a new temporary directory, removed afterwards).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry demo" keep' -l 'keep' -d 'Keep the demo\'s files.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry demo" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry demo" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" vmx' -l 'vmx' -d 'The VMware configuration of the VM.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" target' -l 'target' -d 'The hypervisor to write for: ganeti, libvirt, proxmox or qemu.' -rfka 'ganeti libvirt proxmox qemu'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" json' -l 'json' -d 'Print the plan, its reasons and the configuration as JSON.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" bridge' -l 'bridge' -d 'The bridge the NICs join (Ganeti link=, libvirt/QEMU/Proxmox bridge).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" ganeti-node' -l 'ganeti-node' -d 'Ganeti: the node to create the instance on (-n).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" ganeti-os' -l 'ganeti-os' -d 'Ganeti: the OS definition (-o; never run, --no-install).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" vmid' -l 'vmid' -d 'Proxmox: the VM id.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" storage' -l 'storage' -d 'Proxmox: the storage the disks are imported into.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" format source-format' -l 'source-format' -l 'format' -d 'Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan"' -l 'allow-backing' -d 'Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry plan" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry explain" list' -l 'list' -d 'List every boot error ferry explains.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry explain" json' -l 'json' -d 'Print the entry as JSON.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry explain" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry explain" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" nbd' -l 'nbd' -d 'Where to listen: unix:PATH or tcp:HOST:PORT (port 0: any free port).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" writable' -l 'writable' -d 'Let clients write (raw files and block devices only).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" run' -l 'run' -d 'Serve while this shell command runs, with $uri set; exit with its status.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" socket-activation' -l 'socket-activation' -d 'Serve on the listening socket systemd passes (LISTEN_FDS, fd 3) instead of --nbd.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" tls-certificates' -l 'tls-certificates' -d 'Require TLS, with DIR/server-cert.pem and DIR/server-key.pem (as qemu-nbd and nbdkit name them).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" tls-verify-peer' -l 'tls-verify-peer' -d 'With --tls-certificates: accept only clients with a certificate signed by DIR/ca-cert.pem.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" tls-psk' -l 'tls-psk' -d 'Require TLS-PSK with the USERNAME:HEXKEY lines of FILE (psktool\'s format) instead of certificates.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" format source-format' -l 'source-format' -l 'format' -d 'Source format (raw, qcow2, vmdk, vhd, vhdx, ova) instead of detecting it. Regular files are detected by content; block devices are raw unless this says otherwise; raw is never probed.' -rfka 'raw qcow2 vmdk vhd vhdx ova'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve"' -l 'allow-backing' -d 'Also allow backing files, parents and extents in DIR (repeatable). Without it an image may name only files in its own directory.' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry serve" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry esxi" -eq 1' -fa 'ls' -d 'List the VMs of an ESXi host: power state, guest OS, disks, allocated and provisioned size, snapshots.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_positional "ferry esxi" -eq 1' -fa 'report' -d 'A pre-flight report of every VM on an ESXi host: guest OS, boot verdicts on IDE and VirtIO, snapshots, independent disks, data to move.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" json' -l 'json' -d 'Print the VMs as JSON.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi ls" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" password-file' -l 'password-file' -d 'esxi:// sources: the host\'s password is the first line of FILE (never on the command line; FERRY_ESXI_PASSWORD_FILE and FERRY_ESXI_PASSWORD also work, else a prompt).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" esxi-fingerprint' -l 'esxi-fingerprint' -d 'esxi:// sources: trust only the host certificate with this SHA-256 fingerprint (AB:CD:…, as ferry prints it on first contact).' -rfka ''
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" esxi-insecure' -l 'esxi-insecure' -d 'esxi:// sources: do not check the host\'s certificate at all (a warning is printed on every run).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" force' -l 'force' -d 'esxi:// sources: read a running VM\'s disk as it is now (the copy is crash-consistent at best) instead of refusing it (exit 75).'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" json' -l 'json' -d 'Print the report as JSON.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" version' -l 'version' -d 'Show the version.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry esxi report" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ferry' -n '__ferry_should_offer_completions_for_flags_or_options "ferry help" version' -l 'version' -d 'Show the version.'
