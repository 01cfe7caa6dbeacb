#!/usr/bin/python3
"""Runs the gnt-instance command lines `ferry plan --target ganeti` prints through Ganeti's own
code, short of a cluster: the real gnt-instance option parser (ganeti.cli._ParseArgs over
ganeti.client.gnt_instance.commands), the real command function up to the opcode it would
submit (SubmitOrSend is replaced by a recorder), the opcode's own type validation, and the KVM
hypervisor's parameter checks (hv_kvm.KVMHypervisor.CheckParameterSyntax and
ValidateParameters, which asks `kvm -M ?` whether the machine_version exists).

Input on stdin: the renderer's output (shell lines; `#` lines ignored). Prints one line per
command checked and exits 0, or prints Ganeti's error and exits 1. Needs Debian's ganeti package.
"""
import glob
import os
import shlex
import sys

dirs = sorted(glob.glob("/usr/share/ganeti/[0-9]*"))
if not dirs:
    print("ganeti is not installed (/usr/share/ganeti/<version>)", file=sys.stderr)
    sys.exit(77)
sys.path.insert(0, dirs[-1])

from ganeti import cli, constants, errors, objects  # noqa: E402
from ganeti.client import gnt_instance  # noqa: E402
from ganeti.hypervisor import hv_kvm  # noqa: E402

submitted = []


def record(op, opts, cl=None, feedback_fn=None):
    submitted.append(op)
    return []


cli.SubmitOrSend = record
gnt_instance.SubmitOrSend = record



def check(line):
    """Checks one line; in a child process, because optparse's list defaults are shared
    between parses and one refused line would leak its values into the next."""
    argv = shlex.split(line)
    if argv[0] != "gnt-instance":
        print("not a gnt-instance line: %s" % line)
        return 1
    try:
        func, options, args = cli._ParseArgs("gnt-instance", argv, gnt_instance.commands, gnt_instance.aliases, set())
        if func is None:
            raise errors.OpPrereqError("gnt-instance refused the arguments")
        del submitted[:]
        func(options, args)
        if len(submitted) != 1:
            raise errors.OpPrereqError("%s submitted %d opcodes" % (argv[1], len(submitted)))
        op = submitted[0]
        op.Validate(True)
        hvparams = dict(constants.HVC_DEFAULTS[constants.HT_KVM])
        hvparams.update(op.hvparams)
        hv_kvm.KVMHypervisor.CheckParameterSyntax(hvparams)
        hv_kvm.KVMHypervisor.ValidateParameters(hvparams)
        if argv[1] == "add":
            objects.UpgradeBeParams(op.beparams)
            for nic in op.nics:
                if nic.get("mac") not in (None, "generate", "auto"):
                    cli.utils.NormalizeAndValidateMac(nic["mac"])
            print("ok %s %s: %d disk(s), %d nic(s), hvparams %s" % (argv[1], args[0], len(op.disks), len(op.nics),
                  ",".join("%s=%s" % kv for kv in sorted(op.hvparams.items()))))
        else:
            print("ok %s %s: hvparams %s" % (argv[1], args[0], ",".join("%s=%s" % kv for kv in sorted(op.hvparams.items()))))
        if op.hvparams.get(constants.HV_KVM_EXTRA):
            # What hv_kvm appends to the QEMU command line.
            print("kvm_extra argv: %r" % op.hvparams[constants.HV_KVM_EXTRA].split(" "))
        return 0
    except Exception as err:  # Ganeti's errors and anything else the line provokes
        print("ganeti refused: %s\n  %s: %s" % (line, type(err).__name__, err))
        return 1


status = 0
for line in sys.stdin.read().splitlines():
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        os._exit(check(line))
    _, code = os.waitpid(pid, 0)
    if not os.WIFEXITED(code) or os.WEXITSTATUS(code) != 0:
        status = 1
sys.exit(status)
