#!/usr/bin/env bash
# The floor `make bench` compares site.yml against: the same all-in-one stack
# written as a plain shell script - apt, a venv with pip, certbot, a systemd
# unit; no hardening, no validation, no health gate, no idempotence.
#   bash baseline.sh APP_SOURCE_DIR     (as root on a fresh Debian host)
# nginx terminates TLS (a self-signed certificate: the bench has no ACME CA)
# and proxies to gunicorn on a unix socket; PostgreSQL holds the app's database
# and user, Redis wants a password. Ends with /health (and /health/ready)
# answering through nginx.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
src=${1:?usage: baseline.sh APP_SOURCE_DIR}
name=flaskstack.localhost
app=/srv/flaskapp

apt-get update -q
apt-get install -y -q --no-install-recommends \
  nginx postgresql postgresql-client redis-server python3 python3-venv \
  certbot openssl ufw curl ca-certificates

db_password=$(openssl rand -hex 24)
redis_password=$(openssl rand -hex 24)

runuser -u postgres -- psql -q -c "CREATE ROLE flaskapp LOGIN PASSWORD '$db_password'"
runuser -u postgres -- createdb -O flaskapp flaskapp

printf '\nrequirepass %s\nmaxmemory 128mb\n' "$redis_password" >>/etc/redis/redis.conf
systemctl restart redis-server

useradd --system --create-home --home-dir "$app" --shell /usr/sbin/nologin flaskapp
chmod 0751 "$app"
usermod -aG flaskapp www-data
cp -r "$src" "$app/app"
chown -R flaskapp:flaskapp "$app/app"
install -m 0640 -o root -g flaskapp /dev/stdin /etc/flaskapp.env <<EOF
APP_ENV=production
SECRET_KEY=$(openssl rand -hex 32)
DATABASE_URL=postgresql+psycopg://flaskapp:$db_password@127.0.0.1:5432/flaskapp
REDIS_URL=redis://:$redis_password@127.0.0.1:6379/0
EOF
runuser -u flaskapp -- python3 -m venv "$app/venv"
runuser -u flaskapp -- "$app/venv/bin/pip" install -q --disable-pip-version-check \
  --require-hashes -r "$app/app/requirements.txt"
runuser -u flaskapp -- bash -c "set -a; . /etc/flaskapp.env; cd $app/app;
  $app/venv/bin/flask --app flaskstack_sample:create_app db upgrade"

cat >/etc/systemd/system/gunicorn.service <<EOF
[Unit]
Description=gunicorn for flaskapp
After=network.target postgresql.service redis-server.service

[Service]
User=flaskapp
Group=flaskapp
RuntimeDirectory=gunicorn
RuntimeDirectoryMode=0755
WorkingDirectory=$app/app
EnvironmentFile=/etc/flaskapp.env
ExecStart=$app/venv/bin/gunicorn --workers $(($(nproc) * 2 + 1)) --umask 007 \\
  --bind unix:/run/gunicorn/flaskapp.sock flaskstack_sample.wsgi:app
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now gunicorn.service

mkdir -p /etc/ssl/flaskapp
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
  -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
  -keyout /etc/ssl/flaskapp/privkey.pem -out /etc/ssl/flaskapp/fullchain.pem 2>/dev/null
cat >/etc/nginx/sites-available/flaskapp <<EOF
upstream flaskapp {
    server unix:/run/gunicorn/flaskapp.sock;
}
server {
    listen 80;
    server_name $name;
    location / { return 301 https://\$host\$request_uri; }
}
server {
    listen 443 ssl http2;
    server_name $name;
    ssl_certificate /etc/ssl/flaskapp/fullchain.pem;
    ssl_certificate_key /etc/ssl/flaskapp/privkey.pem;
    location /static/ { alias $app/app/flaskstack_sample/static/; }
    location / {
        proxy_pass http://flaskapp;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
    }
}
EOF
rm -f /etc/nginx/sites-enabled/default
ln -sf /etc/nginx/sites-available/flaskapp /etc/nginx/sites-enabled/flaskapp
systemctl restart nginx

ufw allow 22/tcp
ufw allow 80,443/tcp
ufw --force enable

# /health through nginx, and /health/ready: PostgreSQL and Redis answer the app.
curl -fsSk --retry 20 --retry-delay 1 --retry-all-errors --resolve "$name:443:127.0.0.1" \
  --write-out '\n' "https://$name/health" "https://$name/health/ready"
