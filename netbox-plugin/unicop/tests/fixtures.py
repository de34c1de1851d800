"""Shared test data helpers (not a test module): stock NetBox objects that anchor or join roots."""

from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Site

from unicop.models import Root


def root_of(kind, anchor):
    return Root.objects.get(key=f'{kind}/{anchor.pk}')


def make_device(site, name):
    manufacturer, _ = Manufacturer.objects.get_or_create(name='Acme', slug='acme')
    device_type, _ = DeviceType.objects.get_or_create(manufacturer=manufacturer, model='Box', slug='box')
    role, _ = DeviceRole.objects.get_or_create(name='Edge', slug='edge')
    return Device.objects.create(name=name, site=site, device_type=device_type, role=role)


def make_site(name):
    return Site.objects.create(name=name, slug=name.lower())
