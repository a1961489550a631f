#!/usr/bin/env python3
"""Serve the real Keystone public API (identity v3) on one loopback port.

Keystone no longer ships the ``keystone-wsgi-public`` script (it is the module
``keystone.wsgi.api`` now); this launcher builds the same application with
Keystone's own ``initialize_application('public', ...)`` and serves it with the
standard library's threaded wsgiref server, so no extra WSGI server is needed.

Usage: keystone_local.py --config-file keystone.conf [--host 127.0.0.1]
                         [--port 5000] [--pid-file FILE]
"""
import argparse
import os
import signal
import socketserver
import sys
import threading
from wsgiref import simple_server


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--config-file', required=True)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=5000)
    ap.add_argument('--pid-file', help='write our PID here')
    a = ap.parse_args()
    if a.pid_file:
        with open(a.pid_file, 'w') as f:
            f.write('%d\n' % os.getpid())
    # oslo.config parses sys.argv when Keystone configures itself: leave it only the program.
    sys.argv = sys.argv[:1]

    from keystone.server.flask import core as flask_core
    from oslo_log import log as logging

    app = flask_core.initialize_application(name='public', config_files=[a.config_file])
    log = logging.getLogger('keystone-local')

    class _Handler(simple_server.WSGIRequestHandler):
        def log_message(self, fmt, *args):  # access log -> keystone.log
            log.info('%s %s', self.address_string(), fmt % args)

    server = _ThreadingWSGIServer((a.host, a.port), _Handler)
    server.set_app(app)

    def _shutdown(signum, frame):
        log.info('signal %s received, shutting down', signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    log.info('Keystone listening on http://%s:%d/v3', a.host, a.port)
    print('keystone-local: listening on http://%s:%d/v3' % (a.host, a.port), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        import logging as _pylogging

        _pylogging.shutdown()
        os._exit(0)


if __name__ == '__main__':
    main()
