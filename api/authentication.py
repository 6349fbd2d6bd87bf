"""`Authorization: Bearer <key>` for other tools; the browser uses its session instead."""

from rest_framework import authentication, exceptions

from api.services import api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate a request by its API key; `request.auth` is then the ApiKey row."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        try:
            keyword, _, key = header.decode("latin-1").partition(" ")
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                "The Authorization header is not readable text; send 'Bearer <key>'."
            ) from None
        if keyword.lower() != self.keyword.lower():
            # Another scheme (Basic, Token…) is not ours to judge.
            return None
        key = key.strip()
        if not key or " " in key:
            raise exceptions.AuthenticationFailed(
                "Send the key as 'Authorization: Bearer <key>', with one space and no other text."
            )
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed(
                "This API key is unknown or revoked. Ask an admin for a new one "
                "(manage.py create_api_key NAME --role sdr|reviewer|admin)."
            )
        return (api_key.user, api_key)

    def authenticate_header(self, request) -> str:
        # Makes a missing or bad key a 401 with WWW-Authenticate rather than a 403.
        return 'Bearer realm="api"'
