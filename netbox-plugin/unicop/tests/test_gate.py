"""The validation gate's policy key `schema` (docs/decisions/0060): None by default; an inline JSON Schema
(draft 2020-12) is kept as given and published in the kind's policy; one that is not an object, names
another dialect, or is not itself a valid schema is refused at load with ImproperlyConfigured naming the
kind and the key."""

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase

from unicop.catalogue import parse_catalogue

LOWER_CASE_NAMES = {
    'type': 'object',
    'properties': {
        'members': {'type': 'array', 'items': {'properties': {'name': {'pattern': '^[a-z]+$'}}}},
    },
}


def _kind_with(schema):
    return parse_catalogue({'site': {'policy': {'schema': schema}}})['site']


class SnapshotSchemaTestCase(SimpleTestCase):
    def test_no_schema_by_default(self):
        self.assertIsNone(parse_catalogue({})['site'].policy['schema'])

    def test_a_valid_schema_is_kept_as_given(self):
        self.assertEqual(_kind_with(LOWER_CASE_NAMES).policy['schema'], LOWER_CASE_NAMES)
        draft = {**LOWER_CASE_NAMES, '$schema': 'https://json-schema.org/draft/2020-12/schema'}
        self.assertEqual(_kind_with(draft).policy['schema'], draft)

    def test_a_bad_schema_is_refused_naming_the_kind(self):
        cases = [
            ('{"type": "object"}', 'root_kinds.site.policy.schema must be None or a JSON Schema object'),
            (['type', 'object'], 'root_kinds.site.policy.schema must be None or a JSON Schema object'),
            ({'type': 'objekt'}, 'root_kinds.site.policy.schema is not a valid JSON Schema at type'),
            ({'properties': {'a': {'pattern': 7}}}, 'schema is not a valid JSON Schema at properties/a'),
            ({'required': 'name'}, 'root_kinds.site.policy.schema is not a valid JSON Schema at required'),
            (
                {'$schema': 'http://json-schema.org/draft-04/schema#', 'type': 'object'},
                "root_kinds.site.policy.schema.$schema must be absent or 'https://json-schema.org/draft/2020-12",
            ),
        ]
        for schema, message in cases:
            with self.subTest(schema=schema), self.assertRaisesMessage(ImproperlyConfigured, message):
                _kind_with(schema)
