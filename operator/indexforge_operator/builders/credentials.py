"""The internal-auth Secret and how workloads read it.

NetworkPolicies are not enforced by every CNI, so each hop behind them authenticates too:
Kong adds a per-instance token the services verify, Redis requires a password, Weaviate an
API key. One generated Secret holds all of them; each workload reads only the keys it needs
(env for values fixed for the process's life, a file for gateway tokens, which the services
re-read so an overlapping rotation needs no restart).
"""

from __future__ import annotations

from ..generated import (
    GATEWAY_TOKENS_KEY,
    RABBITMQ_COOKIE_KEY,
    RABBITMQ_PASSWORD_KEY,
    REDIS_INSTANCES,
    WEAVIATE_API_KEY_KEY,
    GeneratedSecrets,
    redis_password_key,
)
from ..naming import Names
from .common import Obj, secret

TOKENS_VOLUME = "gateway-tokens"
TOKENS_DIR = "/var/run/indexforge/gateway"
TOKENS_FILE = f"{TOKENS_DIR}/tokens"
WEAVIATE_USER = "indexforge"
RABBITMQ_USER = "indexforge"
RABBITMQ_AUTH_CONF_KEY = "rabbitmq-auth.conf"
RABBITMQ_USERNAME_KEY = "rabbitmq-username"


def redis_auth_conf_key(instance: str) -> str:
    return f"{instance}.conf"


def redis_auth_conf(password: str) -> str:
    """Included by redis.conf; masterauth lets a future replica authenticate to its primary."""
    return f"requirepass {password}\nmasterauth {password}\n"


def rabbitmq_auth_conf(password: str) -> str:
    """conf.d file of the default user: applied when a node creates its database."""
    return (
        f"default_user = {RABBITMQ_USER}\n"
        f"default_pass = {password}\n"
        "default_permissions.configure = .*\n"
        "default_permissions.read = .*\n"
        "default_permissions.write = .*\n"
    )


def internal_auth_data(names: Names, secrets: GeneratedSecrets) -> dict[str, str]:
    data = {WEAVIATE_API_KEY_KEY: secrets.weaviate_api_key}
    for instance in REDIS_INSTANCES:
        password = secrets.redis_password(instance)
        data[redis_password_key(instance)] = password
        data[redis_auth_conf_key(instance)] = redis_auth_conf(password)
    data[GATEWAY_TOKENS_KEY] = "\n".join(secrets.gateway_tokens) + "\n"
    if secrets.rabbitmq_password:
        data[RABBITMQ_USERNAME_KEY] = RABBITMQ_USER
        data[RABBITMQ_PASSWORD_KEY] = secrets.rabbitmq_password
        data[RABBITMQ_AUTH_CONF_KEY] = rabbitmq_auth_conf(secrets.rabbitmq_password)
        data[RABBITMQ_COOKIE_KEY] = secrets.erlang_cookie
    return data


def build_internal_auth(
    names: Names, *, secrets: GeneratedSecrets, messaging: bool = False
) -> list[Obj]:
    missing = [i for i in REDIS_INSTANCES if not secrets.redis_password(i)]
    if missing or not secrets.weaviate_api_key or not secrets.gateway_tokens:
        raise ValueError("internal credentials were not generated (tokens, Redis, Weaviate)")
    if messaging and not (secrets.rabbitmq_password and secrets.erlang_cookie):
        raise ValueError("RabbitMQ credentials were not generated")
    return [secret(names, None, names.internal_auth, internal_auth_data(names, secrets))]


def secret_env(names: Names, variable: str, key: str) -> Obj:
    """An env var read from the internal-auth Secret."""
    return {
        "name": variable,
        "valueFrom": {"secretKeyRef": {"name": names.internal_auth, "key": key}},
    }


def redis_password_env(names: Names, variable: str, instance: str) -> Obj:
    return secret_env(names, variable, redis_password_key(instance))


def tokens_volume(names: Names) -> Obj:
    return {
        "name": TOKENS_VOLUME,
        "secret": {
            "secretName": names.internal_auth,
            "items": [{"key": GATEWAY_TOKENS_KEY, "path": "tokens"}],
            "defaultMode": 0o440,
        },
    }


def tokens_mount() -> Obj:
    return {"name": TOKENS_VOLUME, "mountPath": TOKENS_DIR, "readOnly": True}
