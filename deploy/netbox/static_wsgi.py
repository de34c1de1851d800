"""NetBox's WSGI application with its collected static files (STATIC_ROOT, collected at image build)
served under STATIC_URL by WhiteNoise: gunicorn alone does not serve /static/, and one process per
container keeps the image to one server."""

from django.conf import settings
from netbox.wsgi import application as netbox_application
from whitenoise import WhiteNoise

application = WhiteNoise(netbox_application, root=settings.STATIC_ROOT, prefix=settings.STATIC_URL)
