"""The officials' console (zh-CN): server-rendered pages over the reviewers' API.

`routes.py` serves the pages under `/console` (FastAPI + Jinja2, a little vanilla JS, our own CSS;
nothing fetched from the internet); `client.py` calls the API in-process with the user's own
bearer token, so every permission is the API's; `format.py` turns the API's values into what
officials read (dates with the weekday, amounts in 元 / 万元, statuses and steps in Chinese).
"""
