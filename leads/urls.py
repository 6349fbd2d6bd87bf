from django.urls import path

from leads import views

app_name = "leads"

urlpatterns = [
    path("", views.lead_list, name="list"),
    path("leads/<int:pk>/", views.lead_detail, name="detail"),
    path("leads/<int:pk>/find-email/", views.lead_find_email, name="find_email"),
    path("leads/<int:pk>/re-enrich/", views.lead_reenrich, name="reenrich"),
    path("leads/<int:pk>/runs/<int:run_id>/", views.lead_run_status, name="run_status"),
    path("leads/<int:pk>/fields/<str:field>/edit/", views.lead_field_edit, name="field_edit"),
    path(
        "leads/<int:pk>/suggestions/<int:observation_id>/<str:decision>/",
        views.lead_suggestion_decide,
        name="suggestion_decide",
    ),
]
