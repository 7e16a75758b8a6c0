"""The internal-auth Secret and how workloads read it.

NetworkPolicies are not enforced by every CNI, so each hop behind them authenticates too:
Kong adds a per-instance token the services verify, Redis requires a password, Weaviate an
API key. One generated Secret holds all of them; each workload reads only the keys it needs
(env for values fixed for the process's life, a file for gateway tokens and Redis passwords,
which the services re-read so an overlapping rotation needs no restart).

The Weaviate API key clients use is ``weaviate-api-key`` (a mounted file the API, workers and
backup jobs re-read, so the key moves without restarting them); ``weaviate-api-keys`` is the
comma-separated list Weaviate accepts (its value during a rotation, weaviate_rotation.py).

Per Redis instance the Secret holds the password clients use (``<instance>-password``), every
password the Redis accepts (``<instance>-passwords``, newest first: the ACL sync sidecar
applies it live, redis_acl.py) and the config file Redis starts with (``<instance>.conf``).
"""

from __future__ import annotations

from ..generated import (
    GATEWAY_TOKENS_KEY,
    RABBITMQ_COOKIE_KEY,
    RABBITMQ_PASSWORD_KEY,
    REDIS_INSTANCES,
    WEAVIATE_API_KEY_KEY,
    WEAVIATE_API_KEYS_KEY,
    GeneratedSecrets,
    redis_password_key,
    redis_passwords_key,
    weaviate_keys_value,
)
from ..naming import Names
from .common import Obj, secret
from .redis_acl import acl_user_line

TOKENS_VOLUME = "gateway-tokens"
TOKENS_DIR = "/var/run/indexforge/gateway"
TOKENS_FILE = f"{TOKENS_DIR}/tokens"
REDIS_PASSWORDS_VOLUME = "redis-passwords"
REDIS_PASSWORDS_DIR = "/var/run/indexforge/redis"
WEAVIATE_KEY_VOLUME = "weaviate-api-key"
WEAVIATE_KEY_DIR = "/var/run/indexforge/weaviate"
WEAVIATE_KEY_FILE = f"{WEAVIATE_KEY_DIR}/api-key"
WEAVIATE_USER = "indexforge"
RABBITMQ_USER = "indexforge"
RABBITMQ_AUTH_CONF_KEY = "rabbitmq-auth.conf"
RABBITMQ_USERNAME_KEY = "rabbitmq-username"


def redis_auth_conf_key(instance: str) -> str:
    return f"{instance}.conf"


def redis_auth_conf(accepted: tuple[str, ...], current: str) -> str:
    """Included by redis.conf: the default user accepts every listed password (what the sync
    sidecar keeps up to date later); masterauth lets a replica authenticate to its primary
    with what clients use now, which the primary accepts throughout a rotation."""
    return f"{acl_user_line(accepted)}masterauth {current}\n"


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
    data = {
        WEAVIATE_API_KEY_KEY: secrets.weaviate_api_key,
        # Outside a rotation the key as it is (an External Secrets template, a user's key);
        # an overlapping list is checked before Weaviate could misread it.
        WEAVIATE_API_KEYS_KEY: weaviate_keys_value(secrets.weaviate_accepted)
        if secrets.weaviate_accepted
        else secrets.weaviate_api_key,
    }
    for instance in REDIS_INSTANCES:
        password = secrets.redis_password(instance)
        accepted = secrets.redis_accepted_passwords(instance)
        data[redis_password_key(instance)] = password
        data[redis_passwords_key(instance)] = "".join(f"{p}\n" for p in accepted)
        data[redis_auth_conf_key(instance)] = redis_auth_conf(accepted, password)
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


def redis_password_file(instance: str) -> str:
    """Where a service reads the password of one Redis (re-read per connection)."""
    return f"{REDIS_PASSWORDS_DIR}/{instance}"


def redis_passwords_volume(names: Names, instances: list[str]) -> Obj:
    """The current password of each listed Redis, a file per instance. A directory volume
    (never subPath, whose files the kubelet does not update) so a rotation reaches the pod."""
    return {
        "name": REDIS_PASSWORDS_VOLUME,
        "secret": {
            "secretName": names.internal_auth,
            "items": [{"key": redis_password_key(i), "path": i} for i in instances],
            "defaultMode": 0o440,
        },
    }


def redis_passwords_mount() -> Obj:
    return {"name": REDIS_PASSWORDS_VOLUME, "mountPath": REDIS_PASSWORDS_DIR, "readOnly": True}


def weaviate_key_volume(names: Names) -> Obj:
    """The Weaviate API key clients use, as a file. A directory volume (never subPath, whose
    files the kubelet does not update) so a rotation reaches the pod without a restart."""
    return {
        "name": WEAVIATE_KEY_VOLUME,
        "secret": {
            "secretName": names.internal_auth,
            "items": [{"key": WEAVIATE_API_KEY_KEY, "path": "api-key"}],
            "defaultMode": 0o440,
        },
    }


def weaviate_key_mount() -> Obj:
    return {"name": WEAVIATE_KEY_VOLUME, "mountPath": WEAVIATE_KEY_DIR, "readOnly": True}
