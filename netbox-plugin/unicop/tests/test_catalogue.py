"""The root catalogue: the built-in kinds `prefix` and `site` (anchors, members, default AWX template and
policy), kinds declared in PLUGINS_CONFIG (overriding a built-in, adding one, adding one without members,
removing one), change windows (normalised to a list with defaults; bad windows refused), and refusal of
bad declarations with ImproperlyConfigured naming the offending field."""

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from unicop.catalogue import DEFAULT_POLICY, WEEKDAYS, parse_catalogue


class BuiltinKindsTestCase(SimpleTestCase):
    def test_builtin_kinds(self):
        cat = parse_catalogue({})
        self.assertEqual(sorted(cat.kinds), ['prefix', 'site'])
        self.assertEqual(cat['prefix'].anchor_type, 'ipam.prefix')
        self.assertEqual([m.object_type for m in cat['prefix'].members], ['ipam.ipaddress', 'ipam.iprange'])
        self.assertEqual(cat['site'].anchor_type, 'dcim.site')
        self.assertEqual(
            [m.object_type for m in cat['site'].members], ['dcim.device', 'dcim.rack', 'ipam.vlan']
        )
        self.assertEqual(cat['site'].policy, DEFAULT_POLICY)

    def test_covered_types(self):
        self.assertEqual(
            parse_catalogue({}).covered_types(),
            [
                'dcim.device',
                'dcim.rack',
                'dcim.site',
                'ipam.ipaddress',
                'ipam.iprange',
                'ipam.prefix',
                'ipam.vlan',
            ],
        )


class DeclaredKindsTestCase(SimpleTestCase):
    def test_override_builtin_template_and_policy(self):
        cat = parse_catalogue(
            {
                'prefix': {
                    'awx_template': {'type': 'workflow', 'id': 12},
                    'policy': {'approval_required': True},
                }
            }
        )
        self.assertEqual(cat['prefix'].awx_template, {'type': 'workflow', 'id': 12})
        self.assertTrue(cat['prefix'].policy['approval_required'])
        self.assertEqual(cat['prefix'].policy['drift_mode'], 'detect')
        self.assertEqual(len(cat['prefix'].members), 2, 'members of the built-in kind are kept')

    def test_new_kind_and_removed_builtin(self):
        cat = parse_catalogue(
            {
                'site': None,
                'tenant': {
                    'anchor': 'tenancy.tenant',
                    'members': [{'object_type': 'dcim.site', 'relation': 'fk', 'field': 'tenant'}],
                },
            }
        )
        self.assertEqual(sorted(cat.kinds), ['prefix', 'tenant'])
        self.assertEqual(cat.by_member['dcim.site'][0][0].name, 'tenant')

    def test_kind_without_members(self):
        cat = parse_catalogue(
            {'tenant': {'anchor': 'tenancy.tenant', 'awx_template': {'type': 'workflow', 'id': 9}}}
        )
        self.assertEqual(cat['tenant'].members, ())
        self.assertEqual(cat.by_anchor['tenancy.tenant'], [cat['tenant']])
        self.assertEqual(cat['tenant'].awx_template, {'type': 'workflow', 'id': 9})

    def test_refusals_name_the_field(self):
        cases = [
            ({'x': {'anchor': 'nope.model'}}, 'root_kinds.x.anchor'),
            (
                {
                    'x': {
                        'anchor': 'dcim.site',
                        'members': [{'object_type': 'dcim.device', 'relation': 'near'}],
                    }
                },
                'root_kinds.x.members[0].relation',
            ),
            (
                {
                    'x': {
                        'anchor': 'dcim.site',
                        'members': [{'object_type': 'dcim.device', 'relation': 'fk', 'field': 'rack'}],
                    }
                },
                'root_kinds.x.members[0]',
            ),
            (
                {'x': {'anchor': 'dcim.site', 'members': [{'object_type': 'dcim.device', 'relation': 'fk'}]}},
                'root_kinds.x.members[0]',
            ),
            ({'site': {'policy': {'drift_mode': 'sometimes'}}}, 'root_kinds.site.policy.drift_mode'),
            ({'site': {'policy': {'retries': 3}}}, 'root_kinds.site.policy'),
            ({'site': {'policy': {'run_timeout_seconds': 0}}}, 'root_kinds.site.policy.run_timeout_seconds'),
            ({'site': {'awx_template': {'type': 'playbook'}}}, 'root_kinds.site.awx_template.type'),
            ({'a/b': {'anchor': 'dcim.site'}}, 'root_kinds.a/b'),
            ([], 'root_kinds must be a dict'),
        ]
        for config, field in cases:
            with self.subTest(field=field), self.assertRaisesMessage(ImproperlyConfigured, field):
                parse_catalogue(config)


def _window_of(change_window):
    kind = parse_catalogue({'site': {'policy': {'change_window': change_window}}})['site']
    return kind.policy['change_window']


class ChangeWindowTestCase(SimpleTestCase):
    def test_none_by_default(self):
        self.assertIsNone(parse_catalogue({})['site'].policy['change_window'])
        self.assertIsNone(_window_of(None))

    def test_single_window_becomes_a_list_with_defaults(self):
        self.assertEqual(
            _window_of({'start': '02:00', 'end': '03:00'}),
            [{'days': list(WEEKDAYS), 'start': '02:00', 'end': '03:00', 'timezone': 'UTC'}],
        )

    def test_list_normalised(self):
        self.assertEqual(
            _window_of(
                [
                    {
                        'days': ['sat', 'mon', 'sat'],
                        'start': '06:30',
                        'end': '07:45',
                        'timezone': 'Asia/Tokyo',
                    },
                    {'days': ['fri'], 'start': '22:00', 'end': '02:00'},  # crosses midnight: Friday night
                    {'days': None, 'start': '00:00', 'end': '23:59', 'timezone': None},
                ]
            ),
            [
                {'days': ['mon', 'sat'], 'start': '06:30', 'end': '07:45', 'timezone': 'Asia/Tokyo'},
                {'days': ['fri'], 'start': '22:00', 'end': '02:00', 'timezone': 'UTC'},
                {'days': list(WEEKDAYS), 'start': '00:00', 'end': '23:59', 'timezone': 'UTC'},
            ],
        )

    def test_refusals_name_kind_and_field(self):
        prefix = 'root_kinds.site.policy.change_window'
        ok = {'start': '02:00', 'end': '03:00'}
        cases = [
            ([], prefix),
            ('maintenance', prefix),
            ([ok, 'nightly'], f'{prefix}[1] must be a dict'),
            ({**ok, 'weeks': [1]}, f'{prefix}: unknown keys'),
            ({**ok, 'days': []}, f'{prefix}.days'),
            ({**ok, 'days': 'mon'}, f'{prefix}.days'),
            ({**ok, 'days': ['monday']}, f'{prefix}.days'),
            ({'end': '03:00'}, f'{prefix}.start'),
            ({**ok, 'start': '2:00'}, f'{prefix}.start'),
            ({**ok, 'end': '24:00'}, f'{prefix}.end'),
            ({**ok, 'end': '03:00\n'}, f'{prefix}.end'),
            ({**ok, 'end': 300}, f'{prefix}.end'),
            ({'start': '02:00', 'end': '02:00'}, f'{prefix}.end equals start'),
            ([ok, {**ok, 'timezone': 'Mars/Olympus_Mons'}], f'{prefix}[1].timezone'),
            ({**ok, 'timezone': '../../etc/passwd'}, f'{prefix}.timezone'),
            ({**ok, 'timezone': 'America'}, f'{prefix}.timezone'),
            ({**ok, 'timezone': ''}, f'{prefix}.timezone'),
            ({**ok, 'timezone': 1}, f'{prefix}.timezone'),
        ]
        for change_window, message in cases:
            with (
                self.subTest(change_window=change_window),
                self.assertRaisesMessage(ImproperlyConfigured, message),
            ):
                _window_of(change_window)
