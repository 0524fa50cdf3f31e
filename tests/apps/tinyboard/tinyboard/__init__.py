"""tinyboard: a message board. Configuration comes from the environment:
SECRET_KEY, DATABASE_URL, REDIS_URL, TINYBOARD_DATA_DIR."""
from __future__ import annotations

import os

import redis
from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


class Message(db.Model):
    __tablename__ = "tinyboard_messages"
    id = db.Column(db.Integer, primary_key=True)
    body = db.Column(db.String(500), nullable=False)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config["DATA_DIR"] = os.environ.get("TINYBOARD_DATA_DIR", "data")
    db.init_app(app)
    migrate.init_app(app, db)  # migrations/ in the working directory
    queue = redis.Redis.from_url(os.environ["REDIS_URL"])

    @app.get("/")
    def index():
        return redirect(url_for("login"))

    @app.get("/login")
    def login():
        return render_template("login.html", count=db.session.query(Message).count())

    @app.post("/messages")
    def post_message():
        message = Message(body=request.get_json(force=True)["body"])
        db.session.add(message)
        db.session.commit()
        queue.rpush("tinyboard:jobs", message.id)
        return jsonify(id=message.id), 201

    return app
