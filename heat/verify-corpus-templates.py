#!/usr/bin/env python3
"""Create the stack of every corpus job for real in a standalone Heat, and report.

For every scenario of the conformance corpus (tests/conformance/scenarios/*), every job
record (`/jobs/all/<id>` in watch/jobs.jsonl and, where present, watch/full.jsonl) is executed
the way the worker executes it (PROTOCOL.md sections 4.8, 5.1 and 7), against a real Heat
started with heat/start-heat.sh (so with the plugins of heat/plugins):

  1. select the job's template: evaluate the resource type's template mapping
     (memo/template_mappings.json) against the job's `resource_input`; cross-check that the
     template's parameter_mappings keys equal the job's param names (if the mapping cannot be
     evaluated, take the template whose key set equals the param names). The template text is
     the latest version of that template in the scenario's watch/config.jsonl set before the job
     (the earliest one if none is older);
  2. resolve the params: "value" -> value; "output_key" -> output_value of the dependency's
     record in watch/heat_stacks.jsonl (the latest one written before the job); "list" -> the
     list of the resolved elements;
  3. render template_file with Jinja2 using ONLY the jinja_* params;
  4. POST the stack `<resource_type>_<resource_id>` with the other params except heat_timeout as
     Heat parameters, `timeout_mins` = heat_timeout, `disable_rollback: true`; poll until it is no
     longer *_IN_PROGRESS; check the outputs; DELETE it and poll until DELETE_COMPLETE.

With --lifecycle, each resource's jobs are then also replayed in order on one stack: create for
the first job, PUT (full replace) for each later create/modify, DELETE for logical_delete and at
the end - the calls the worker makes.

With --smoke, every distinct template text (all versions in the scenarios' config.jsonl and
conformance/heat_templates/*.json) is also created once with synthetic inputs, so templates that
no job uses are exercised too: Jinja2 variables are left undefined (a lenient Undefined that
renders as "1", is false, iterates as empty and tolerates attribute access, indexing, calls
and arithmetic) and
each Heat parameter without a default gets a dummy of its declared type. Resources inside
`{% for %}` over jinja variables are therefore not created in this mode; the summary lists
which resource types reached CREATE_COMPLETE in either mode.

Every job is reported; the summary counts CREATE_COMPLETE and groups failures by cause. Exit
status 0 when every job reached CREATE_COMPLETE (and, with --lifecycle, every step completed),
1 otherwise.

Run it with the Heat venv's python (it has jinja2 and yaml):
    EP=$(heat/start-heat.sh --port 8014 --fresh)
    ~/.cache/heat-reconciler/heat/venv/bin/python heat/verify-corpus-templates.py --endpoint $EP
"""

import argparse
import collections
import concurrent.futures
import glob
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request

import jinja2
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFORMANCE = os.environ.get('HEAT_RECONCILER_CONFORMANCE') or \
    os.path.normpath(os.path.join(HERE, '..', 'tests', 'conformance'))
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
TEMPLATE_PREFIX = '/config/v2.0/heat_templates/'


# ---------------------------------------------------------------------------------------------
# corpus reading

def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def decode(value):
    """A value that may be JSON text (as Gohan writes it) or already decoded."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def load_templates(scenario):
    """{template_id: [(ts, seq, body)]} from watch/config.jsonl, in log order."""
    out = collections.defaultdict(list)
    for rec in read_jsonl(os.path.join(scenario, 'watch', 'config.jsonl')):
        if not rec['key'].startswith(TEMPLATE_PREFIX) or rec.get('value') is None:
            continue
        value = decode(rec['value'])
        body = decode(value.get('body'))
        out[rec['key'][len(TEMPLATE_PREFIX):]].append((rec['ts'], rec['seq'], body))
    return out


def load_jobs(scenario):
    """[(ts, source, job)] of the /jobs/all records, one per job id, first seen wins."""
    jobs = {}
    for name in ('jobs.jsonl', 'full.jsonl'):
        for rec in read_jsonl(os.path.join(scenario, 'watch', name)):
            if not rec['key'].startswith('/jobs/all/') or rec.get('value') is None:
                continue
            value = decode(rec['value'])
            if not isinstance(value, list) or len(value) < 2:
                continue
            job = value[1]
            jobs.setdefault(job['id'], (rec['ts'], name, job))
    return sorted(jobs.values(), key=lambda j: j[0])


def load_stack_records(scenario):
    """{"<type>:<id>": [(ts, record)]} of /esi-worker/heat_stacks values (sets only).

    watch/heat_stacks.jsonl (millisecond timestamps) first; watch/full.jsonl (second
    resolution) adds the writes that watcher missed: a full.jsonl entry equal to a
    heat_stacks.jsonl one of the same second is the same write.
    """
    out = collections.defaultdict(list)
    seen = set()
    for name in ('heat_stacks.jsonl', 'full.jsonl'):
        for rec in read_jsonl(os.path.join(scenario, 'watch', name)):
            if not rec['key'].startswith('/esi-worker/heat_stacks/') or rec.get('value') is None:
                continue
            value = decode(rec['value'])
            if not isinstance(value, dict) or 'id' not in value:
                continue
            sig = (rec['ts'][:19], json.dumps(value, sort_keys=True))
            if name == 'full.jsonl' and sig in seen:
                continue
            seen.add(sig)
            out[value['id']].append((rec['ts'], value))
    for recs in out.values():
        recs.sort(key=lambda r: r[0])
    return out


# ---------------------------------------------------------------------------------------------
# template selection (PROTOCOL.md 5.1; only the mapping forms template_mappings use)

def eval_mapping(mapping, cur):
    if isinstance(mapping, str):
        kind, arg = mapping[:1], mapping[1:]
        if kind == 'C':
            return arg
        if kind == 'P':
            return cur.get(arg)
        if kind == 'A':
            return ''.join('' if v is None else str(v)
                           for v in (eval_mapping(part, cur) for part in arg.split('&')))
        raise ValueError('unsupported mapping %r' % mapping)
    if isinstance(mapping, dict):
        if 'constant' in mapping:
            return mapping['constant']
        if 'if_mapping' in mapping:
            (op, (a, b)), = mapping['if_mapping'].items()
            a, b = eval_mapping(a, cur), eval_mapping(b, cur)
            if op == 'equal':
                hit = a == b
            elif op == 'regexp':
                hit = isinstance(a, str) and re.match(b, a) is not None
            else:
                raise ValueError('unsupported operator %r' % op)
            return eval_mapping(mapping['then_mapping' if hit else 'else_mapping'], cur)
        if 'field' in mapping and 'path' not in mapping:
            return cur.get(mapping['field'])
    raise ValueError('unsupported mapping %r' % (mapping,))


def pick_version(versions, ts):
    older = [v for v in versions if v[0] <= ts]
    return (older[-1] if older else versions[0])[2]


def select_template(job, ts, templates, template_mappings):
    """(template_id, body, note) or (None, None, reason)."""
    names = {p['param'] for p in job['params']}
    by_keys = sorted(tid for tid, versions in templates.items()
                     if set(pick_version(versions, ts).get('parameter_mappings', {})) == names)
    mapping = template_mappings.get(job['resource_type'])
    tid, note = None, ''
    if mapping is not None:
        try:
            tid = eval_mapping(mapping, job.get('resource_input') or {})
        except ValueError as e:
            note = 'template mapping not evaluated (%s); ' % e
    if tid is None:
        if len(by_keys) != 1:
            return None, None, note + 'no unique template by param names: %s' % by_keys
        tid, note = by_keys[0], note + 'selected by param names'
    if tid not in templates:
        return None, None, 'template %r not in config.jsonl' % tid
    body = pick_version(templates[tid], ts)
    if set(body.get('parameter_mappings', {})) != names:
        note += 'param names differ from %s mapping keys; ' % tid
    return tid, body, note.strip('; ')


# ---------------------------------------------------------------------------------------------
# params

class Unresolved(Exception):
    pass


def resolve_param(param, ts, stacks):
    kind, value = param['type'], param['value']
    if kind == 'value':
        return value
    if kind == 'list':
        return [resolve_param(e, ts, stacks) for e in value]
    if kind == 'output_key':
        key = '%s:%s' % (value['resource_type'], value['resource_id'])
        recs = stacks.get(key)
        if not recs:
            raise Unresolved('no heat_stacks record for %s' % key)
        older = [r for r in recs if r[0] <= ts] or recs
        for out in older[-1][1].get('output') or []:
            if out.get('output_key') == value['output_key']:
                return out.get('output_value')
        raise Unresolved('heat_stacks record of %s has no output %r'
                         % (key, value['output_key']))
    raise Unresolved('unknown param type %r' % kind)


def split_params(job, ts, stacks):
    """(jinja_context, heat_parameters, timeout_mins) per PROTOCOL.md 4.6 / 4.8."""
    jinja_ctx, heat_params, timeout = {}, {}, None
    for p in job['params']:
        value = resolve_param(p, ts, stacks)
        name = p['param']
        if name == 'heat_timeout':
            timeout = int(value)
        elif name.startswith('jinja_'):
            jinja_ctx[name] = value
        else:
            heat_params[name] = value
    return jinja_ctx, heat_params, timeout


def render(template_text, jinja_ctx):
    """Render like the original worker (Jinja2 defaults); also report what StrictUndefined says."""
    text = jinja2.Template(template_text).render(**jinja_ctx)
    strict_note = None
    try:
        jinja2.Template(template_text, undefined=jinja2.StrictUndefined).render(**jinja_ctx)
    except jinja2.UndefinedError as e:
        strict_note = 'StrictUndefined: %s' % e
    return text, strict_note


def yaml_to_json(text):
    doc = yaml.safe_load(text)
    # heat_template_version 2013-05-23 is a date to safe_load (HEAT-STANDALONE.md pitfall 8)
    if not isinstance(doc.get('heat_template_version'), str):
        doc['heat_template_version'] = str(doc['heat_template_version'])
    return doc


# ---------------------------------------------------------------------------------------------
# Heat REST

class Heat(object):
    def __init__(self, endpoint, poll=0.2):
        self.ep = endpoint.rstrip('/')
        self.poll = poll

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.ep + path, data=data, method=method, headers={
            'Content-Type': 'application/json', 'Accept': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode('utf-8', 'replace')

    @staticmethod
    def error_text(status, body):
        if isinstance(body, dict) and isinstance(body.get('error'), dict):
            err = body['error']
            return '%s %s: %s' % (status, err.get('type'), err.get('message'))
        return '%s %s' % (status, body)

    def wait(self, name, sid, deadline_s):
        end = time.time() + deadline_s
        while True:
            status, body = self.call('GET', '/stacks/%s/%s' % (name, sid))
            if status == 404:
                return {'stack_status': 'NOT_FOUND', 'stack_status_reason': ''}
            if status != 200:
                return {'stack_status': 'HTTP_%s' % status,
                        'stack_status_reason': self.error_text(status, body)}
            stack = body['stack']
            if not stack['stack_status'].endswith('_IN_PROGRESS'):
                return stack
            if time.time() > end:
                return dict(stack, stack_status=stack['stack_status'] + ' (poll timeout)')
            time.sleep(self.poll)

    def find(self, name):
        status, body = self.call('GET', '/stacks?stack_name=%s' % name)
        if status == 200:
            for s in body.get('stacks', []):
                if s['stack_name'] == name:
                    return s['id']
        return None

    def delete(self, name, sid):
        status, body = self.call('DELETE', '/stacks/%s/%s' % (name, sid))
        if status not in (204, 404):
            return 'DELETE %s' % self.error_text(status, body)
        return self.wait(name, sid, 300)['stack_status']


# ---------------------------------------------------------------------------------------------
# one job

def value_kind(v):
    if v is None:
        return 'null'
    if isinstance(v, bool):
        return 'bool'
    if isinstance(v, (int, float)):
        return 'number'
    if isinstance(v, str):
        return 'string'
    if isinstance(v, list):
        return 'list'
    return 'map'


def check_outputs(stack, template_doc, corpus_rec):
    """Problems with the outputs, and a comparison with the corpus's record of the same job."""
    problems = []
    outputs = {o['output_key']: o for o in stack.get('outputs') or []}
    tmpl_outputs = (template_doc or {}).get('outputs') or {}
    for key, out in sorted(outputs.items()):
        if 'output_error' in out:
            problems.append('output %s: error %s' % (key, out['output_error']))
        elif out.get('output_value') is None:
            problems.append('output %s is null' % key)
        spec = (tmpl_outputs.get(key) or {}).get('value')
        if isinstance(spec, dict) and 'get_resource' in spec:
            if not UUID_RE.match(str(out.get('output_value'))):
                problems.append('output %s (get_resource) is not a UUID: %r'
                                % (key, out.get('output_value')))
    diff = []
    if corpus_rec is not None:
        theirs = {o['output_key']: o.get('output_value') for o in corpus_rec.get('output') or []}
        ours = {k: o.get('output_value') for k, o in outputs.items()}
        if set(theirs) != set(ours):
            diff.append('output keys differ from corpus: only ours %s, only corpus %s'
                        % (sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))))
        for k in sorted(set(theirs) & set(ours)):
            if value_kind(theirs[k]) != value_kind(ours[k]):
                diff.append('output %s is a %s, corpus has a %s (%r)'
                            % (k, value_kind(ours[k]), value_kind(theirs[k]), theirs[k]))
    return problems, diff


def corpus_record_after(stacks, job, ts):
    recs = [r for r in stacks.get('%s:%s' % (job['resource_type'], job['resource_id']), [])
            if r[0] >= ts and r[1].get('stack_status', '').endswith('_COMPLETE')
            and r[1].get('stack_status') != 'DELETE_COMPLETE']
    return recs[0][1] if recs else None


def prepare(job, ts, templates, template_mappings, stacks, template_format):
    """Everything needed to send the job's stack, or an error category + text."""
    tid, body, note = select_template(job, ts, templates, template_mappings)
    prep = {'template_id': tid, 'note': note}
    if tid is None:
        prep['error'] = ('template selection', note)
        return prep
    try:
        jinja_ctx, heat_params, timeout = split_params(job, ts, stacks)
    except Unresolved as e:
        prep['error'] = ('unresolved output_key param', str(e))
        return prep
    try:
        text, strict_note = render(body['template_file'], jinja_ctx)
    except jinja2.TemplateError as e:
        prep['error'] = ('jinja2 render', '%s: %s' % (type(e).__name__, e))
        return prep
    prep['strict_note'] = strict_note
    try:
        doc = yaml_to_json(text)
    except yaml.YAMLError as e:
        prep['error'] = ('rendered template is not YAML', str(e).replace('\n', ' '))
        return prep
    prep['doc'] = doc
    prep['request'] = {
        'stack_name': '%s_%s' % (job['resource_type'], job['resource_id']),
        'template': text if template_format == 'text' else doc,
        'parameters': heat_params,
        'timeout_mins': timeout,
        'disable_rollback': True,
    }
    return prep


def run_job(heat, scenario_name, ts, job, prep, stacks):
    res = {'scenario': scenario_name, 'job_id': job['id'], 'action': job['action'],
           'resource_type': job['resource_type'], 'resource_id': job['resource_id'],
           'template_id': prep.get('template_id'), 'note': prep.get('note', ''),
           'strict_note': prep.get('strict_note')}
    if 'error' in prep:
        res.update(status='NOT_SENT', category=prep['error'][0], reason=prep['error'][1])
        return res
    req = prep['request']
    name = req['stack_name']
    old = heat.find(name)   # a left-over of an interrupted run
    if old:
        heat.delete(name, old)
    t0 = time.time()
    status, body = heat.call('POST', '/stacks', req)
    if status != 201:
        etype = body.get('error', {}).get('type') if isinstance(body, dict) else None
        res.update(status='REJECTED', category='POST %s %s' % (status, etype),
                   reason=heat.error_text(status, body))
        return res
    sid = body['stack']['id']
    stack = heat.wait(name, sid, 60 * (req['timeout_mins'] or 60) + 30)
    res.update(status=stack['stack_status'], reason=stack.get('stack_status_reason'),
               seconds=round(time.time() - t0, 2))
    if stack['stack_status'] == 'CREATE_COMPLETE':
        res['resource_types'] = created_types(heat, name, sid)
        res['outputs'] = stack.get('outputs') or []
        res['problems'], res['corpus_diff'] = check_outputs(
            stack, prep.get('doc'), corpus_record_after(stacks, job, ts))
    else:
        res['category'] = 'stack %s' % stack['stack_status']
    res['delete'] = heat.delete(name, sid)
    return res


# ---------------------------------------------------------------------------------------------
# smoke: every template text once, synthetic inputs

class LenientUndefined(jinja2.ChainableUndefined):
    """Undefined that tolerates attribute access, indexing, calls and arithmetic and renders as
    "1" (so `{{ a }}-{{ b }}` stays a YAML scalar); it is false and iterates as empty."""

    def __call__(self, *args, **kwargs):
        return self

    def __str__(self):
        return '1'

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __call__
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __call__


DUMMY_BY_TYPE = {'string': 'x', 'number': 1, 'boolean': True, 'json': {},
                 'comma_delimited_list': 'a,b'}


def template_texts(conformance, scenarios):
    """{(template_id, text): [where]} over the scenarios' config.jsonl and heat_templates/."""
    out = collections.OrderedDict()
    for scenario in scenarios:
        for tid, versions in sorted(load_templates(scenario).items()):
            for ts, _seq, body in versions:
                out.setdefault((tid, body['template_file']), []).append(
                    '%s@%s' % (os.path.basename(scenario), ts))
    for path in sorted(glob.glob(os.path.join(conformance, 'heat_templates', '*.json'))):
        with open(path) as f:
            body = decode(json.load(f)['value']['body'])
        out.setdefault((body['id'], body['template_file']), []).append('heat_templates/')
    return out


def run_smoke(heat, n, tid, text):
    res = {'template_id': tid, 'smoke': n}
    try:
        rendered = jinja2.Template(text, undefined=LenientUndefined).render()
        doc = yaml_to_json(rendered)
    except (jinja2.TemplateError, yaml.YAMLError) as e:
        res.update(status='NOT_SENT', reason='%s: %s' % (type(e).__name__, e))
        return res
    params = {k: DUMMY_BY_TYPE.get(d.get('type'), 'x')
              for k, d in (doc.get('parameters') or {}).items() if 'default' not in d}
    name = 'smoke_%s_%d' % (tid, n)
    status, body = heat.call('POST', '/stacks', {
        'stack_name': name, 'template': rendered, 'parameters': params,
        'timeout_mins': 5, 'disable_rollback': True})
    if status != 201:
        res.update(status='REJECTED', reason=heat.error_text(status, body))
        return res
    sid = body['stack']['id']
    stack = heat.wait(name, sid, 330)
    res.update(status=stack['stack_status'], reason=stack.get('stack_status_reason'),
               resource_types=created_types(heat, name, sid))
    res['delete'] = heat.delete(name, sid)
    return res


def created_types(heat, name, sid):
    status, body = heat.call('GET', '/stacks/%s/%s/resources' % (name, sid))
    if status != 200:
        return []
    return sorted({r['resource_type'] for r in body.get('resources', [])
                   if r.get('resource_status') == 'CREATE_COMPLETE'})


# ---------------------------------------------------------------------------------------------
# lifecycle: a resource's jobs in order on one stack

def run_lifecycle(heat, scenario_name, steps):
    """steps: [(ts, job, prep)] of one resource, in order. Returns per-step results."""
    out, sid, name = [], None, None
    for ts, job, prep in steps:
        step = {'scenario': scenario_name, 'job_id': job['id'], 'action': job['action']}
        out.append(step)
        if job['action'] == 'logical_delete':
            if sid is None:
                step.update(call='DELETE', status='SKIPPED (no stack)')
                continue
            step.update(call='DELETE', status=heat.delete(name, sid))
            sid = None
            continue
        if 'error' in prep:
            step.update(call='-', status='NOT_SENT', reason=prep['error'][1])
            continue
        req = prep['request']
        name = req['stack_name']
        if sid is None:
            old = heat.find(name)
            if old:
                heat.delete(name, old)
            status, body = heat.call('POST', '/stacks', req)
            step['call'] = 'POST'
            if status != 201:
                step.update(status='REJECTED', reason=heat.error_text(status, body))
                continue
            sid = body['stack']['id']
        else:
            upd = {k: v for k, v in req.items() if k != 'stack_name'}
            status, body = heat.call('PUT', '/stacks/%s/%s' % (name, sid), upd)
            step['call'] = 'PUT'
            if status != 202:
                step.update(status='REJECTED', reason=heat.error_text(status, body))
                continue
        stack = heat.wait(name, sid, 60 * (req['timeout_mins'] or 60) + 30)
        step.update(status=stack['stack_status'], reason=stack.get('stack_status_reason'),
                    outputs={o['output_key']: o.get('output_value')
                             for o in stack.get('outputs') or []})
    if sid is not None:
        out.append({'scenario': scenario_name, 'job_id': '(end of lifecycle)',
                    'action': 'cleanup', 'call': 'DELETE', 'status': heat.delete(name, sid)})
    return out


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--endpoint', default=os.environ.get('HEAT_ENDPOINT',
                                                         'http://127.0.0.1:8004/v1/admin'))
    ap.add_argument('--conformance', default=DEFAULT_CONFORMANCE,
                    help='the conformance folder (default $HEAT_RECONCILER_CONFORMANCE, else tests/conformance)')
    ap.add_argument('--scenario', action='append',
                    help='only this scenario (name or path; repeatable)')
    ap.add_argument('--template-format', choices=('text', 'json'), default='text',
                    help='send the rendered template as YAML text (default) or as a JSON object')
    ap.add_argument('--parallel', type=int, default=4,
                    help='stacks in flight at once (jobs of one stack stay sequential)')
    ap.add_argument('--lifecycle', action='store_true',
                    help="also replay each resource's jobs in order on one stack "
                         "(POST/PUT/DELETE)")
    ap.add_argument('--smoke', action='store_true',
                    help='also create every distinct template text once with synthetic inputs')
    ap.add_argument('--json', metavar='FILE', help='write every result to FILE')
    ap.add_argument('-v', '--verbose', action='store_true', help='print the outputs of each stack')
    a = ap.parse_args()

    with open(os.path.join(a.conformance, 'memo', 'template_mappings.json')) as f:
        template_mappings = json.load(f).get('heat_worker', {})
    scenarios = sorted(glob.glob(os.path.join(a.conformance, 'scenarios', '*')))
    if a.scenario:
        scenarios = [s for s in scenarios if os.path.basename(s) in
                     {os.path.basename(os.path.normpath(x)) for x in a.scenario}]
    heat = Heat(a.endpoint)
    status, _ = heat.call('GET', '/stacks')
    if status != 200:
        sys.exit('Heat does not answer at %s (GET /stacks: %s)' % (a.endpoint, status))

    work = []   # (scenario_name, ts, job, prep)
    templates_seen = set()
    for scenario in scenarios:
        sname = os.path.basename(scenario)
        templates = load_templates(scenario)
        stacks = load_stack_records(scenario)
        for ts, _source, job in load_jobs(scenario):
            prep = prepare(job, ts, templates, template_mappings, stacks, a.template_format)
            work.append((sname, ts, job, prep, stacks))
            if prep.get('template_id'):
                templates_seen.add((sname, prep['template_id']))

    # jobs of one stack name run in order; different stacks run in parallel
    groups = collections.OrderedDict()
    for item in work:
        key = (item[0], item[2]['resource_type'], item[2]['resource_id'])
        groups.setdefault(key, []).append(item)
    lock = threading.Lock()
    results = []

    def run_group(items):
        for sname, ts, job, prep, stacks in items:
            r = run_job(heat, sname, ts, job, prep, stacks)
            with lock:
                results.append(r)
                line = '%-8s %-26s %-14s %-24s %s' % (
                    'OK' if r['status'] == 'CREATE_COMPLETE' else 'FAIL', sname,
                    job['action'], job['resource_type'], job['resource_id'][:8])
                line += '  tmpl=%s  %s' % (r['template_id'], r['status'])
                if r.get('seconds') is not None:
                    line += ' %.1fs' % r['seconds']
                if r['status'] != 'CREATE_COMPLETE':
                    line += '  [%s] %s' % (r.get('category'), r.get('reason'))
                for p in r.get('problems') or []:
                    line += '\n           problem: %s' % p
                if r.get('delete') not in (None, 'DELETE_COMPLETE', 'NOT_FOUND'):
                    line += '\n           delete: %s' % r['delete']
                if a.verbose:
                    for o in r.get('outputs') or []:
                        line += '\n           output %s = %s' % (
                            o['output_key'], json.dumps(o.get('output_value')))
                print(line, flush=True)

    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.parallel)) as ex:
        for f in [ex.submit(run_group, items) for items in groups.values()]:
            f.result()
    elapsed = time.time() - t0

    lifecycle = []
    if a.lifecycle:
        def run_life(items):
            steps = [(ts, job, prep) for _s, ts, job, prep, _st in items]
            return run_lifecycle(heat, items[0][0], steps)
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.parallel)) as ex:
            for steps in ex.map(run_life, groups.values()):
                lifecycle.extend(steps)

    smoke = []
    if a.smoke:
        texts = list(template_texts(a.conformance, scenarios).items())
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.parallel)) as ex:
            smoke = list(ex.map(lambda it: dict(run_smoke(heat, it[0], it[1][0][0], it[1][0][1]),
                                                where=it[1][1]),
                                enumerate(texts)))

    # ---- summary
    ok = [r for r in results if r['status'] == 'CREATE_COMPLETE']
    print('\n== summary (%s, template sent as %s)' % (a.endpoint, a.template_format))
    print('scenarios: %d, jobs: %d (%s), distinct (scenario, template) pairs: %d'
          % (len(scenarios), len(results),
             ', '.join('%s %d' % kv for kv in sorted(
                 collections.Counter(r['action'] for r in results).items())),
             len(templates_seen)))
    print('CREATE_COMPLETE: %d of %d jobs (%.0f s)' % (len(ok), len(results), elapsed))
    by_tmpl = collections.defaultdict(lambda: [0, 0])
    for r in results:
        by_tmpl[r['template_id']][1] += 1
        by_tmpl[r['template_id']][0] += r['status'] == 'CREATE_COMPLETE'
    print('per template: ' + ', '.join('%s %d/%d' % (t, v[0], v[1])
                                       for t, v in sorted(by_tmpl.items(), key=str)))
    cats = collections.Counter(r.get('category') for r in results
                               if r['status'] != 'CREATE_COMPLETE')
    for cat, n in cats.most_common():
        print('failure %-40s %d' % (cat, n))
        for r in results:
            if r.get('category') == cat:
                print('    %s %s %s: %s' % (r['scenario'], r['action'], r['job_id'][:60],
                                            r.get('reason')))
    problems = [(r, p) for r in results for p in r.get('problems') or []]
    print('output problems (null / error / get_resource not a UUID): %d' % len(problems))
    for r, p in problems:
        print('    %s %s: %s' % (r['scenario'], r['template_id'], p))
    diffs = collections.Counter((r['template_id'], d) for r in results
                                for d in r.get('corpus_diff') or [])
    compared = sum(1 for r in results if 'corpus_diff' in r)
    print('outputs compared with the corpus record of the same job: %d jobs, %d differences'
          % (compared, sum(diffs.values())))
    for (t, d), n in sorted(diffs.items(), key=str):
        print('    %s (x%d): %s' % (t, n, d))
    notes = collections.Counter((r['template_id'], r['note']) for r in results if r['note'])
    for (t, n), c in sorted(notes.items(), key=str):
        print('note %s (x%d): %s' % (t, c, n))
    strict = collections.Counter((r['template_id'], r['strict_note']) for r in results
                                 if r.get('strict_note'))
    for (t, n), c in sorted(strict.items(), key=str):
        print('jinja %s (x%d): renders with Jinja2 defaults, fails with %s' % (t, c, n))
    bad_deletes = [r for r in results if r.get('delete') not in (None, 'DELETE_COMPLETE',
                                                                  'NOT_FOUND')]
    print('deletes not reaching DELETE_COMPLETE: %d' % len(bad_deletes))
    life_ok = True
    if a.lifecycle:
        calls = collections.Counter((s.get('call'), s['status']) for s in lifecycle)
        print('lifecycle (%d resources): %s' % (len(groups), ', '.join(
            '%s->%s %d' % (c, s, n) for (c, s), n in sorted(calls.items(), key=str))))
        for s in lifecycle:
            if s['status'] not in ('CREATE_COMPLETE', 'UPDATE_COMPLETE', 'DELETE_COMPLETE'):
                life_ok = False
                print('    %s %s %s: %s %s' % (s['scenario'], s['action'], s['job_id'][:60],
                                              s['status'], s.get('reason', '')))
    smoke_ok = True
    if a.smoke:
        good = [r for r in smoke if r['status'] == 'CREATE_COMPLETE']
        print('smoke: %d of %d distinct template texts (%d template ids) reached CREATE_COMPLETE'
              % (len(good), len(smoke), len({r['template_id'] for r in smoke})))
        for r in smoke:
            if r['status'] != 'CREATE_COMPLETE' or r.get('delete') not in (None, 'DELETE_COMPLETE'):
                smoke_ok = False
                print('    %s (%s): %s %s; delete %s' % (r['template_id'], ', '.join(r['where']),
                                                      r['status'], r.get('reason'),
                                                      r.get('delete')))
    job_types = {t for r in results for t in r.get('resource_types') or []}
    smoke_types = {t for r in smoke for t in r.get('resource_types') or []}
    print('resource types created by the jobs: %s' % ', '.join(sorted(job_types)))
    if a.smoke:
        print('resource types created only in smoke: %s'
              % (', '.join(sorted(smoke_types - job_types)) or '-'))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'results': results, 'lifecycle': lifecycle, 'smoke': smoke}, f, indent=1,
                      sort_keys=True)
    sys.exit(0 if len(ok) == len(results) and not bad_deletes and life_ok and smoke_ok else 1)


if __name__ == '__main__':
    main()
