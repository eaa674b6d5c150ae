"""A cron expression in words, in the user's language ("At 02:00", "在 02:00"), via cron-descriptor.

cron-descriptor is the library Airflow's UI uses for the same purpose. Its Chinese table leaves
day names in English; ours are filled in here.
"""

from __future__ import annotations

from functools import lru_cache

_PRESETS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_ZH_DAYS = {
    "Sunday": "星期日",
    "Monday": "星期一",
    "Tuesday": "星期二",
    "Wednesday": "星期三",
    "Thursday": "星期四",
    "Friday": "星期五",
    "Saturday": "星期六",
    "January": "一月",
    "February": "二月",
    "March": "三月",
    "April": "四月",
    "May": "五月",
    "June": "六月",
    "July": "七月",
    "August": "八月",
    "September": "九月",
    "October": "十月",
    "November": "十一月",
    "December": "十二月",
}


@lru_cache(maxsize=1024)
def describe_cron(expr: str, locale: str = "en") -> str:
    """Return `expr` in words in `locale` ("en" or "zh"); the expression itself if it cannot be described."""
    from cron_descriptor import ExpressionDescriptor, Options  # only the pipeline list needs it

    options = Options()
    options.locale_code = "zh_CN" if locale.startswith("zh") else "en_US"
    options.use_24hour_time_format = True
    try:
        text = str(ExpressionDescriptor(_PRESETS.get(expr.strip(), expr), options).get_description())
    except Exception:  # noqa: BLE001  the validator, not this, decides what is a valid cron
        return expr
    if locale.startswith("zh"):
        for english, chinese in _ZH_DAYS.items():
            text = text.replace(english, chinese)
    return text
