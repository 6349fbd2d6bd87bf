from django.urls import path

from webhooks.views import inbound_webhook

app_name = "webhooks"

urlpatterns = [
    path("inbound/<slug:provider>/<str:token>/", inbound_webhook, name="inbound"),
]
