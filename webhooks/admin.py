"""Admin for webhook subscriptions, the delivery log and inbound callback tokens."""

from django import forms
from django.contrib import admin, messages

from webhooks.models import Delivery, Event, InboundToken, Subscription
from webhooks.services import delivery_retry, subscription_disable, subscription_enable
from webhooks.signing import secret_generate


class SubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = Subscription
        fields = ["url", "description", "events", "is_active"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["url", "description", "event_list", "is_active", "disabled_reason"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret", "disabled_reason", "created_at", "updated_at"]
    actions = ["disable", "enable"]

    @admin.display(description="events")
    def event_list(self, obj: Subscription) -> str:
        return ", ".join(obj.events or [])

    def save_model(self, request, obj, form, change):
        if not obj.secret:
            # Shown on the subscription's page for the receiver to verify signatures with.
            obj.secret = secret_generate()
        super().save_model(request, obj, form, change)

    @admin.action(description="Disable the selected subscriptions")
    def disable(self, request, queryset):
        done = sum(
            subscription_disable(subscription=s, reason=f"disabled by {request.user}")
            for s in queryset
        )
        self.message_user(request, f"Disabled {done} subscription(s).", messages.SUCCESS)

    @admin.action(description="Enable the selected subscriptions")
    def enable(self, request, queryset):
        for subscription in queryset:
            subscription_enable(subscription=subscription)
        self.message_user(request, "Enabled.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event",
        "subscription",
        "state",
        "attempts",
        "response_status",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["state", "event"]
    list_select_related = ["subscription"]
    search_fields = ["message_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Send the selected failed deliveries again now")
    def send_again(self, request, queryset):
        sent = sum(delivery_retry(delivery=d) for d in queryset)
        self.message_user(
            request,
            f"Sending {sent} again; deliveries not failed or cancelled, or whose subscription "
            "is disabled, were left alone.",
            messages.SUCCESS,
        )


@admin.register(InboundToken)
class InboundTokenAdmin(admin.ModelAdmin):
    list_display = ["public_id", "provider", "run", "lead", "created_at", "expires_at", "used_at"]
    list_filter = ["provider"]
    list_select_related = ["run", "lead"]
    readonly_fields = [f.name for f in InboundToken._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
