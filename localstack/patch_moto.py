"""Patches LocalStack (its moto-ext, and its CloudWatch) where it differs
from AWS in ways drctl's tests and demo meet. Each patch names the bug.

1. **Route 53: a DELETE removes only the record set it names.** moto-ext 5.1
   (LocalStack 4.13.1) handles a DELETE that carries a SetIdentifier with
   `FakeZone.delete_rrset_by_id`, which drops *every* record set of the zone
   with that identifier, whatever its name and type. In the reference world
   ledger's weighted records and checkout's failover records use the same
   identifiers (`us-east-1`, `us-west-2`), so ledger's compare-and-swap
   switch (a DELETE of the set read, then a CREATE) also deleted checkout's
   PRIMARY records, and checkout's data-plane failover then resolved to the
   last region left (issue 28). Route 53 deletes exactly the set named by
   (name, type, set identifier).
2. **CloudWatch: a dimension matches its whole value.** LocalStack's
   CloudWatch store finds a metric's datapoints with
   `dimensions LIKE '%Name=Value%'`, so a read of `ReplicaLag` for
   `orders-use1` also read every instance or cluster whose id starts with
   it (`orders-use1-<test suffix>`): after a test run, the reference
   world's `status` showed a test's one-hour lag for its own replica, and
   its RPO gate refused (issue 30). Dimensions are stored as
   `Name=Value<TAB>...`; the search now ends each value at its tab.

Run by `localstack/up` with the LocalStack venv's python, before LocalStack
starts:

    python patch_moto.py            # patch (idempotent); prints a line per patch
    python patch_moto.py --check    # exit 0 when every patch is applied, 1 when not

It fails loudly (exit 2) when neither the code a patch replaces nor the
patch is found: a LocalStack or moto-ext upgrade must be looked at (the bug
may be fixed, or the code moved), not silently left unpatched. Files are
found without importing the packages (a patch must not depend on the code
it patches loading).
"""
import importlib.util
import os
import sys
import tempfile

ROUTE53_MARKER = "drctl patch: a DELETE removes only the set it names"

ROUTE53_ORIGINAL = """            elif action == "DELETE":
                if "SetIdentifier" in record_set:
                    the_zone.delete_rrset_by_id(record_set["SetIdentifier"])
                else:
                    the_zone.delete_rrset(record_set)
"""

ROUTE53_PATCHED = f"""            elif action == "DELETE":
                # {ROUTE53_MARKER} (name, type,
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


CLOUDWATCH_MARKER = "drctl patch: a dimension matches its whole value"

CLOUDWATCH_ORIGINAL = """                dimensions += f"%{d.get('Name')}={d.get('Value', '')}%"
"""

CLOUDWATCH_PATCHED = f"""                # {CLOUDWATCH_MARKER}: stored as Name=Value<TAB>, so the
                # value ends at its tab (localstack/patch_moto.py, drctl issue 30).
                dimensions += f"%{{d.get('Name')}}={{d.get('Value', '')}}\\t%"
"""


def package_file(package, *parts):
    """`parts` under `package`'s directory in this interpreter's site-packages."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        die(f"{package} is not installed in " + sys.prefix)
    for root in spec.submodule_search_locations:
        path = os.path.join(root, *parts)
        if os.path.isfile(path):
            return path
    die(f"{package}/{'/'.join(parts)} not found under " + ", ".join(spec.submodule_search_locations))


# (what it fixes, its file, marker, the code it replaces, the replacement, what to read when it moved)
PATCHES = [
    (
        "Route 53 DELETE of one record set",
        lambda: package_file("moto", "route53", "models.py"),
        ROUTE53_MARKER,
        ROUTE53_ORIGINAL,
        ROUTE53_PATCHED,
        "read moto-ext's change_resource_record_sets: if a DELETE now removes only the set it names, "
        "drop this patch; otherwise update ROUTE53_ORIGINAL and ROUTE53_PATCHED",
    ),
    (
        "CloudWatch dimension match",
        lambda: package_file("localstack", "services", "cloudwatch", "cloudwatch_database_helper.py"),
        CLOUDWATCH_MARKER,
        CLOUDWATCH_ORIGINAL,
        CLOUDWATCH_PATCHED,
        "read _get_ordered_dimensions_with_separator: if a search now matches a whole value, drop this "
        "patch; otherwise update CLOUDWATCH_ORIGINAL and CLOUDWATCH_PATCHED",
    ),
]


def die(msg):
    print(f"patch_moto: ERROR: {msg}", file=sys.stderr)
    sys.exit(2)


def write_atomically(path, text):
    """Replaces `path` (a LocalStack starting meanwhile reads the old file or
    the new one) and drops its bytecode, so nothing loads the old code."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".patch.", suffix=".py")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    stem = os.path.splitext(os.path.basename(path))[0] + "."
    cache = os.path.join(os.path.dirname(path), "__pycache__")
    if os.path.isdir(cache):
        for name in os.listdir(cache):
            if name.startswith(stem):
                os.unlink(os.path.join(cache, name))


def apply(name, locate, marker, original, patched, hint, check_only):
    """Applies one patch; True when it is applied (now or before)."""
    path = locate()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if marker in text:
        print(f"already patched: {path} ({name})")
        return True
    if check_only:
        print(f"not patched: {path} ({name})")
        return False
    found = text.count(original)
    if found != 1:
        die(f"{path}: the code the {name} patch replaces was found {found} times, not once: {hint}.")
    write_atomically(path, text.replace(original, patched))
    print(f"patched: {path} ({name})")
    return True


def main(argv):
    check_only = argv[1:] == ["--check"]
    if argv[1:] and not check_only:
        die(f"usage: {argv[0]} [--check]")
    applied = [apply(*p, check_only) for p in PATCHES]
    return 0 if all(applied) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
