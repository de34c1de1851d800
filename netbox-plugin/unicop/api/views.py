from rest_framework.routers import APIRootView


class UnicopRootView(APIRootView):
    """
    UNICOP API root: lists the plugin's REST endpoints.
    """
    def get_view_name(self):
        return 'UNICOP'
