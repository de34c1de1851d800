"""Keyset pagination by id for the bulk root listing: `?limit=N&cursor=C` -> {results, next_cursor}.

The cursor is opaque to clients (today: the last id of the page, as a string). Each page costs one
indexed range scan, whatever its depth: no OFFSET, no COUNT(*).
"""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

DEFAULT_LIMIT = 100  # a page the workers can process in one go
MAX_LIMIT = 1000  # bounds the response size of one request


class KeysetPagination(BasePagination):
    def paginate_queryset(self, queryset, request, view=None):
        errors = {}
        limit = request.query_params.get('limit', DEFAULT_LIMIT)
        try:
            limit = int(limit)
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except (TypeError, ValueError):
            errors['limit'] = [f'An integer from 1 to {MAX_LIMIT} is required.']
        cursor = request.query_params.get('cursor')
        after = None
        if cursor:
            try:
                after = int(cursor)
            except ValueError:
                errors['cursor'] = ['Not a cursor returned by this endpoint.']
        if errors:
            raise ValidationError(errors)
        if after is not None:
            queryset = queryset.filter(pk__gt=after)
        page = list(queryset.order_by('pk')[: limit + 1])
        self.next_cursor = str(page[limit - 1].pk) if len(page) > limit else None
        return page[:limit]

    def get_paginated_response(self, data):
        return Response({'results': data, 'next_cursor': self.next_cursor})

    def get_paginated_response_schema(self, schema):
        return {
            'type': 'object',
            'required': ['results', 'next_cursor'],
            'properties': {'results': schema, 'next_cursor': {'type': 'string', 'nullable': True}},
        }
