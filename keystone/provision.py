#!/usr/bin/env python3
"""Give a bootstrapped Keystone what heat-reconciler's tests need, through its REST API.

Idempotent: finds before it creates, and keeps what already works.

* an ``orchestration`` service (``heat``) with a public endpoint in the region,
  pointing at --heat-url (updated when it changes; left alone without it), and
  an admin one pointing at --heat-admin-url (the same; the TLS tests put a TLS
  proxy in front of the same Heat there);
* a project, a user with the ``member`` role on it, and an application
  credential of that user (bound to the project);
* ``credentials.json`` (mode 0600) in --state-dir with their ids and secrets,
  and ``openrc-password`` / ``openrc-appcred`` (``OS_*`` lines, as
  ``heat-reconciler run --keystone-env-file`` reads them).

Only the standard library is used. Passwords and secrets are generated once
and kept in credentials.json; a user's password is never reset while its
secret is known, because a reset revokes the tokens other processes hold.
"""
import argparse
import json
import os
import secrets
import sys
import urllib.error
import urllib.request

PROJECT = 'heat-reconciler-test'
USER = 'heat-reconciler-test'
APP_CRED = 'heat-reconciler-test'
ROLE = 'member'


class KeystoneError(Exception):
    pass


class Client:
    def __init__(self, auth_url):
        self.auth_url = auth_url.rstrip('/')
        self.token = None

    def call(self, method, path, body=None, token=None, ok=(200, 201, 202, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.auth_url + path, data=data, method=method)
        req.add_header('Accept', 'application/json')
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        token = token or self.token
        if token:
            req.add_header('X-Auth-Token', token)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, e.headers, e.read()
        if status not in ok:
            raise KeystoneError('%s %s: %s %s' % (method, path, status, raw.decode(errors='replace')[:500]))
        return status, headers, (json.loads(raw) if raw else None)

    def authenticate(self, identity, scope=None):
        auth = {'identity': identity}
        if scope:
            auth['scope'] = scope
        _, headers, body = self.call('POST', '/auth/tokens', {'auth': auth}, ok=(201,))
        return headers['X-Subject-Token'], body

    def try_authenticate(self, identity, scope=None):
        try:
            return self.authenticate(identity, scope)
        except KeystoneError:
            return None

    def find(self, collection, key, **query):
        qs = '&'.join('%s=%s' % (k, urllib.request.quote(str(v))) for k, v in query.items())
        _, _, body = self.call('GET', '/%s?%s' % (collection, qs))
        return body[key]


def password_identity(user_id, password):
    return {'methods': ['password'], 'password': {'user': {'id': user_id, 'password': password}}}


def app_cred_identity(cred_id, secret):
    return {'methods': ['application_credential'], 'application_credential': {'id': cred_id, 'secret': secret}}


def orchestration_url(heat_url):
    """`http://h:8004` -> `http://h:8004/v1/%(tenant_id)s`; a URL with a path is kept."""
    heat_url = heat_url.rstrip('/')
    if '/v1' in heat_url:
        return heat_url
    return heat_url + '/v1/%(tenant_id)s'


def ensure_orchestration(ks, region, url, interface):
    services = ks.find('services', 'services', type='orchestration')
    if services:
        service = services[0]
    else:
        _, _, body = ks.call('POST', '/services', {'service': {
            'type': 'orchestration', 'name': 'heat', 'description': 'Orchestration (a standalone Heat)',
            'enabled': True}})
        service = body['service']
    endpoints = ks.find('endpoints', 'endpoints', service_id=service['id'], interface=interface)
    endpoints = [e for e in endpoints if e.get('region_id') == region]
    if not endpoints:
        ks.call('POST', '/endpoints', {'endpoint': {
            'service_id': service['id'], 'interface': interface, 'region_id': region, 'url': url, 'enabled': True}})
    elif endpoints[0]['url'] != url:
        ks.call('PATCH', '/endpoints/%s' % endpoints[0]['id'], {'endpoint': {'url': url}})
    for extra in endpoints[1:]:
        ks.call('DELETE', '/endpoints/%s' % extra['id'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--auth-url', required=True)
    ap.add_argument('--state-dir', required=True)
    ap.add_argument('--admin-password-file', required=True)
    ap.add_argument('--region', default='RegionOne')
    ap.add_argument('--heat-url', default='')
    ap.add_argument('--heat-admin-url', default='')
    ap.add_argument('--token-expiration', type=int, required=True)
    a = ap.parse_args()

    path = os.path.join(a.state_dir, 'credentials.json')
    try:
        with open(path) as f:
            known = json.load(f)
    except (OSError, ValueError):
        known = {}
    with open(a.admin_password_file) as f:
        admin_password = f.read().strip()

    ks = Client(a.auth_url)
    ks.token, _ = ks.authenticate(
        {'methods': ['password'], 'password': {'user': {
            'name': 'admin', 'domain': {'id': 'default'}, 'password': admin_password}}},
        {'project': {'name': 'admin', 'domain': {'id': 'default'}}})

    if a.heat_url:
        ensure_orchestration(ks, a.region, orchestration_url(a.heat_url), 'public')
    if a.heat_admin_url:
        ensure_orchestration(ks, a.region, orchestration_url(a.heat_admin_url), 'admin')
    endpoint = None
    for service in ks.find('services', 'services', type='orchestration'):
        for e in ks.find('endpoints', 'endpoints', service_id=service['id'], interface='public'):
            if e.get('region_id') == a.region:
                endpoint = e['url']

    projects = ks.find('projects', 'projects', name=PROJECT, domain_id='default')
    if projects:
        project = projects[0]
    else:
        _, _, body = ks.call('POST', '/projects', {'project': {
            'name': PROJECT, 'domain_id': 'default', 'description': 'heat-reconciler tests', 'enabled': True}})
        project = body['project']

    users = ks.find('users', 'users', name=USER, domain_id='default')
    password = known.get('user', {}).get('password')
    if users:
        user = users[0]
        if not password or ks.try_authenticate(password_identity(user['id'], password)) is None:
            password = secrets.token_urlsafe(18)
            ks.call('PATCH', '/users/%s' % user['id'], {'user': {'password': password}})
    else:
        password = secrets.token_urlsafe(18)
        _, _, body = ks.call('POST', '/users', {'user': {
            'name': USER, 'domain_id': 'default', 'password': password, 'enabled': True,
            'default_project_id': project['id']}})
        user = body['user']

    role = ks.find('roles', 'roles', name=ROLE)
    if not role:
        raise KeystoneError('role %r does not exist (bootstrap creates it)' % ROLE)
    ks.call('PUT', '/projects/%s/users/%s/roles/%s' % (project['id'], user['id'], role[0]['id']))

    # The user creates its own application credential, with a token scoped to the project.
    user_token, _ = ks.authenticate(password_identity(user['id'], password), {'project': {'id': project['id']}})
    cred = known.get('application_credential', {})
    _, _, body = ks.call('GET', '/users/%s/application_credentials?name=%s' % (user['id'], APP_CRED), token=user_token)
    existing = body['application_credentials']
    works = (existing and cred.get('id') == existing[0]['id'] and cred.get('secret')
             and ks.try_authenticate(app_cred_identity(cred['id'], cred['secret'])) is not None)
    if not works:
        for old in existing:
            ks.call('DELETE', '/users/%s/application_credentials/%s' % (user['id'], old['id']), token=user_token)
        secret = secrets.token_urlsafe(24)
        _, _, body = ks.call('POST', '/users/%s/application_credentials' % user['id'], {'application_credential': {
            'name': APP_CRED, 'secret': secret, 'description': 'heat-reconciler tests'}}, token=user_token)
        cred = {'id': body['application_credential']['id'], 'name': APP_CRED, 'secret': secret}

    result = {
        'auth_url': ks.auth_url,
        'region': a.region,
        'interface': 'public',
        'token_expiration': a.token_expiration,
        'orchestration_endpoint': endpoint,
        'admin': {'username': 'admin', 'password': admin_password, 'project_name': 'admin',
                  'user_domain': 'Default', 'project_domain': 'Default'},
        'project': {'id': project['id'], 'name': PROJECT, 'domain': 'Default'},
        'user': {'id': user['id'], 'name': USER, 'password': password, 'domain': 'Default', 'role': ROLE},
        'application_credential': {'id': cred['id'], 'name': APP_CRED, 'secret': cred['secret'],
                                   'project_id': project['id']},
    }
    write_private(path, json.dumps(result, indent=2) + '\n')
    common = 'OS_AUTH_URL=%s\nOS_REGION_NAME=%s\nOS_INTERFACE=public\n' % (ks.auth_url, a.region)
    write_private(os.path.join(a.state_dir, 'openrc-password'), common + (
        'OS_USERNAME=%s\nOS_PASSWORD=%s\nOS_USER_DOMAIN_NAME=Default\nOS_PROJECT_DOMAIN_NAME=Default\n'
        'OS_PROJECT_ID=%s\n' % (USER, password, project['id'])))
    write_private(os.path.join(a.state_dir, 'openrc-appcred'), common + (
        'OS_AUTH_TYPE=v3applicationcredential\nOS_APPLICATION_CREDENTIAL_ID=%s\n'
        'OS_APPLICATION_CREDENTIAL_SECRET=%s\n' % (cred['id'], cred['secret'])))


def write_private(path, text):
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == '__main__':
    try:
        main()
    except KeystoneError as e:
        sys.exit('provision: %s' % e)
