"""Patches LocalStack's moto (moto-ext) so that a Route 53 DELETE removes only
the record set it names, as Route 53 does.

Why: moto-ext 5.1 (LocalStack 4.13.1) handles a DELETE that carries a
SetIdentifier with `FakeZone.delete_rrset_by_id`, which drops *every* record
set of the zone with that identifier, whatever its name and type. In the
reference world ledger's weighted records and checkout's failover records use
the same identifiers (`us-east-1`, `us-west-2`), so ledger's compare-and-swap
switch (a DELETE of the set read, then a CREATE) also deleted checkout's
PRIMARY records, and checkout's data-plane failover then resolved to the last
region left (issue 28). Route 53 deletes exactly the set named by
(name, type, set identifier).

Run by `localstack/up` with the LocalStack venv's python, before LocalStack
starts:

    python patch_moto.py            # patch (idempotent); prints "patched" or "already patched"
    python patch_moto.py --check    # exit 0 when patched, 1 when not

It fails loudly (exit 2) when neither the code it replaces nor its own patch
is found: a moto-ext upgrade must be looked at (the bug may be fixed, or the
code moved), not silently left unpatched. The file is found without
importing moto (a patch must not depend on the code it patches loading).
"""
import importlib.util
import os
import sys
import tempfile

MARKER = "drctl patch: a DELETE removes only the set it names"

ORIGINAL = """            elif action == "DELETE":
                if "SetIdentifier" in record_set:
                    the_zone.delete_rrset_by_id(record_set["SetIdentifier"])
                else:
                    the_zone.delete_rrset(record_set)
"""

PATCHED = f"""            elif action == "DELETE":
                # {MARKER} (name, type,
                # set identifier), as Route 53 does; moto deleted every set of the zone
                # with that identifier (localstack/patch_moto.py, drctl issue 28).
                if "SetIdentifier" in record_set:
                    _drctl_name = record_set["Name"].rstrip(".").lower()
                    the_zone.rrsets = [
                        _rs
                        for _rs in the_zone.rrsets
                        if not (
                            _rs.set_identifier == record_set["SetIdentifier"]
                            and (_rs.name or "").rstrip(".").lower() == _drctl_name
                            and _rs.type_ == record_set.get("Type")
                        )
                    ]
                else:
                    the_zone.delete_rrset(record_set)
"""


def models_path():
    """moto's route53/models.py in this interpreter's site-packages."""
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        die("moto (LocalStack's moto-ext) is not installed in " + sys.prefix)
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "route53", "models.py")
        if os.path.isfile(path):
            return path
    die("moto/route53/models.py not found under " + ", ".join(spec.submodule_search_locations))


def die(msg):
    print(f"patch_moto: ERROR: {msg}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    check_only = argv[1:] == ["--check"]
    if argv[1:] and not check_only:
        die(f"usage: {argv[0]} [--check]")
    path = models_path()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if MARKER in text:
        print(f"already patched: {path}")
        return 0
    if check_only:
        print(f"not patched: {path}")
        return 1
    found = text.count(ORIGINAL)
    if found != 1:
        die(
            f"{path}: the code this patch replaces (a DELETE with a SetIdentifier calling "
            f"delete_rrset_by_id) was found {found} times, not once: moto-ext changed. "
            "Read its change_resource_record_sets: if a DELETE now removes only the set it "
            "names, drop this patch (localstack/patch_moto.py and its call in localstack/up); "
            "otherwise update ORIGINAL and PATCHED."
        )
    new = text.replace(ORIGINAL, PATCHED)
    # Atomic: a LocalStack starting meanwhile reads the old file or the new one.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".models.", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    # Python recompiles a .pyc whose recorded source mtime/size differ; remove
    # the old one anyway, so nothing can load the unpatched bytecode.
    cache = os.path.join(os.path.dirname(path), "__pycache__")
    if os.path.isdir(cache):
        for name in os.listdir(cache):
            if name.startswith("models."):
                os.unlink(os.path.join(cache, name))
    print(f"patched: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
