"""What the Python benchmarks share: process CPU time and core pinning."""
import os


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def taskset(cpu):
    """argv prefix pinning a command to core `cpu`; none for None or a negative core (unpinned)."""
    return ["taskset", "-c", str(cpu)] if cpu is not None and cpu >= 0 else []
