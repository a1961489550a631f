"""``ESI::Monitoring::MonitoringTarget``: a target registered with the monitor's target API.

Why: in the original deployment this resource POSTed its properties to the Collector Agent
(``http://collector-agents-se:7070/targets``), which answered with the target's ``id`` and
``link`` and from then on probed the device and wrote ``/monitoring/...`` into etcd (PROTOCOL.md
section 8). heat-reconciler's monitor role serves the same API. The stack outputs expose
``monitoring_target_id`` (``get_resource``) and ``monitoring_link`` (``get_attr: [.., link]``).

Configuration, from the Heat process' environment:

* ``ESI_COLLECTOR_URL``: the target API, e.g. ``http://heat-reconciler-monitor:7070``. Unset, no
  collector is contacted: the id is a uuid4 and ``link`` is
  ``http://collector-agents-se:7070/targets/<id>`` (for a Heat that runs templates without
  monitoring, as most of the project's tests do).
* ``ESI_COLLECTOR_TOKEN`` or ``ESI_COLLECTOR_TOKEN_FILE``: the API token (sent as
  ``X-Auth-Token``).

Lifecycle: create POSTs ``/targets``; a change of ``version`` replaces the target (Heat creates
the new one, then deletes the old one), as the corpus shows (a stack update with a new config
version gave a new ``monitoring_target_id``); any other change PUTs ``/targets/<id>`` (same id);
delete DELETEs ``/targets/<id>`` (a target already gone is fine). The collector's answer (secrets
masked by it) is kept in the resource data (key ``target``) and is the ``target`` attribute.
A collector error fails the resource with the collector's message.
"""

import json
import os
import urllib.error
import urllib.request
import uuid

from heat.engine.plugins import esi_base as base  # loaded by Heat from this folder

DEFAULT_COLLECTOR_URL = 'http://collector-agents-se:7070'
TIMEOUT_SECONDS = 30

TARGET_FIELDS = ('type', 'resource_type', 'resource_id', 'field_name', 'tenant_id',
                 'version', 'properties', 'syncer_properties')


class CollectorError(Exception):
    pass


def collector_url():
    """The configured target API, or None when there is none."""
    url = os.environ.get('ESI_COLLECTOR_URL')
    return url.rstrip('/') if url else None


def collector_token():
    path = os.environ.get('ESI_COLLECTOR_TOKEN_FILE')
    if path:
        with open(path) as f:
            return f.read().strip()
    return os.environ.get('ESI_COLLECTOR_TOKEN', '')


def call(method, path, body=None):
    """One API call; the decoded answer (None for 204), or CollectorError."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(collector_url() + path, data=data, method=method)
    request.add_header('X-Auth-Token', collector_token())
    if data is not None:
        request.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        detail = e.read().decode('utf-8', 'replace')[:500]
        raise CollectorError('%s %s: HTTP %s %s' % (method, path, e.code, detail)) from None
    except (urllib.error.URLError, OSError) as e:
        raise CollectorError('%s %s: %s' % (method, path, e)) from None


class MonitoringTarget(base.FakeResource):

    replace_on_change = frozenset(['version'])

    attributes_schema = {
        'link': base.attr('URL of the target at the collector.'),
        'target': base.attr('The target record registered with the collector.'),
    }

    # ---- the collector -----------------------------------------------------------------------
    def _collector_create(self, body):
        """Register a target; returns the collector's record (with ``id`` and ``link``)."""
        if collector_url() is None:
            target_id = str(uuid.uuid4())
            return dict(body, id=target_id, link='%s/targets/%s' % (DEFAULT_COLLECTOR_URL, target_id))
        return call('POST', '/targets', body)

    def _collector_update(self, target, body):
        """Change a registered target in place; returns the new record."""
        if collector_url() is None:
            return dict(target, **body)
        return call('PUT', '/targets/%s' % target['id'], body)

    def _collector_delete(self, target):
        """Unregister a target (must succeed when it is already gone)."""
        if collector_url() is None:
            return
        try:
            call('DELETE', '/targets/%s' % target['id'])
        except CollectorError as e:
            if ' HTTP 404 ' not in str(e):
                raise

    # ---- Heat lifecycle ----------------------------------------------------------------------
    def _target_body(self):
        return {field: self.prop(field) for field in TARGET_FIELDS}

    def _stored_target(self):
        raw = self.data().get('target')
        return json.loads(raw) if raw else None

    def _store_target(self, target):
        self.data_set('target', json.dumps(target, sort_keys=True))

    def handle_create(self):
        target = self._collector_create(self._target_body())
        self.resource_id_set(target['id'])
        self._store_target(target)

    def handle_update(self, json_snippet, tmpl_diff, prop_diff):
        # (self.properties still holds the old values here; prop_diff the changed ones)
        if prop_diff:
            body = self._target_body()
            body.update((k, v) for k, v in prop_diff.items() if k in TARGET_FIELDS)
            target = self._stored_target() or {'id': self.resource_id}
            self._store_target(self._collector_update(target, body))

    def handle_delete(self):
        if self.resource_id is not None:
            self._collector_delete(self._stored_target() or {'id': self.resource_id})
        return None

    def _attribute_values(self):
        target = self._stored_target() or {}
        return {'link': target.get('link'), 'target': target or None}


def resource_mapping():
    return {'ESI::Monitoring::MonitoringTarget': MonitoringTarget}
