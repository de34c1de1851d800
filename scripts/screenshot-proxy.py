"""A tiny reverse proxy for the UI screenshots (scripts/docs-screenshots.ts): serves /static/ from
NetBox's collected static files (gunicorn does not serve them in the local stack) and forwards
everything else to NetBox with the session cookie of a login made through NetBox's own login form.
Local use only (127.0.0.1).

    python3 scripts/screenshot-proxy.py PORT NETBOX_URL STATIC_DIR   (SESSION in the environment)
"""

import mimetypes
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT, UPSTREAM, STATIC = int(sys.argv[1]), sys.argv[2].rstrip('/'), Path(sys.argv[3]).resolve()
SESSION = os.environ['SESSION']


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(NoRedirect)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith('/static/'):
            path = (STATIC / self.path.split('?')[0][len('/static/') :]).resolve()
            if STATIC not in path.parents or not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header('Content-Type', mimetypes.guess_type(path.name)[0] or 'application/octet-stream')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        headers = {
            'Cookie': f'sessionid={SESSION}',
            'Host': self.headers.get('Host', ''),
            'Accept': self.headers.get('Accept', '*/*'),
        }
        req = urllib.request.Request(UPSTREAM + self.path, headers=headers)  # noqa: S310 -- the local NetBox
        try:
            resp = opener.open(req, timeout=60)
        except urllib.error.HTTPError as err:
            resp = err
        body = resp.read()
        self.send_response(resp.status if hasattr(resp, 'status') else resp.code)
        for name in ('Content-Type', 'Location'):
            if resp.headers.get(name):
                self.send_header(name, resp.headers[name])
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(('127.0.0.1', PORT), Handler).serve_forever()
