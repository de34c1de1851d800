"""Prints NetBox's own requirements (`pip install -r`), each pin kept, with psycopg[c,pool] as
psycopg[binary,pool]: the same psycopg version and API with a bundled libpq, so the image needs no
compiler. Run with the venv's python after `pip install --no-deps netbox==...`."""

from importlib.metadata import requires

from pip._vendor.packaging.requirements import Requirement

for line in requires('netbox') or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({'extra': ''}):
        continue
    if req.name == 'psycopg' and 'c' in req.extras:
        req.extras = (req.extras - {'c'}) | {'binary'}
    print(req)
