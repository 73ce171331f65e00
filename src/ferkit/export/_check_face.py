"""A real face crop for checking exports: 64x64 RGB JPEG, the face of ``obama.jpg`` (the official
portrait, public domain; ferkit's sample photos) as ``Recognizer`` crops it (dlib-hog box, margin 0.1).

Shipped as a Python string so that it installs with the code, with no package-data entry.
"""
from __future__ import annotations

import base64
import io

import numpy as np

__all__ = ["check_face"]

_JPEG_B64 = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMU"
    "FRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU"
    "FBQUFBQUFBT/wAARCABAAEADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
    "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
    "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
    "4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAEC"
    "AxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVm"
    "Z2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwCx8bAbPxvZTW+qRvKIvOKwLtEG0H9etVfhp4KubrS7e+uYy7Sz+bkgbiQzHc2eRkk965Dx"
    "FpWp6Nrt3b6rIHvIy4OxwS5APCk+vavdvgYkuqeCrHUbti7yAuATnB/zmvHx9e8W2rXZ6+W4VRlFJ3sj1LwvCvkKHj4AxjFX9QtY"
    "Fl3AEDGTiuPvPjF4M8AyMmva5b2lyBuaLJYjPIyB0qjYftCeBPGEwj0bWILqRsZRG559jXz8qEvZc/LofVQxEPa8nNqdXdW8KNvK"
    "5Xbkc96oSagLVfNhRg68/L3qrqvirT9KE73EgSNB1Y4GK8puf2qPAEV19hfVNjlzG7eUx2n8q56VKc/4cbnZWqwp29pKx3HjPVP7"
    "VvtOef54lJSQEZOCPTvz2rz7Q/iH4k+Et5c6To1quqIl3K0cYR2ChsMMY6Ag16FaT6R408Px32j3y39nNwGT7yN26/TvWn8LfHWl"
    "+GvEl5Pd26GW5mWN9y5CuoIP07/lX0mVVJqo6bdmfF57Tg6PtYx5kefeCdB0j4iaz4lgs7iSTT5CzSEvjEmYyDuPpzj0yfWuh8EW"
    "LeGfCE+mwymSOC4nSOaJMlkLkoQO/wArDpXnngTRrjw1p+s6PZyeVdXlosoSXhiysNwGfUH8cCvV/BtlFp2naZZZ2xrbpuBGCG/i"
    "yPXmvHx0pQryg9m7n0eAUKuCp1I7pcv3HhviP4c6sw1KbTtK0lGIMi3viD9/LM5PPBGF/Pr2NYfwy8A+ILPxTps8lhYTKjq15JDZ"
    "+Uh+bGEO0A8HOc9q+rPEWnwaXbtctcJFa8uxc8AdayvBGrDxVZx3ljaTNpkjFILpsKsoBwXA9CRwe9Z1K83HkaOing4RaqJnL/HH"
    "Sft+gGKwgX7SwBXK7hnjqK+al8FeInv4GWawtFBYTpfaTG6tzxtby8jjg85z+VfYfie0+0wOjFBLGSAGbG4+ma4Sz1mCz1xdH1dR"
    "Z38iB4SWBjmXHO1u5HcHpXPRqyot2R118NCva7OT/Z00TUPDHiZ7e5sxBbXSnzDZq4tnIBKuFIGw8YPbBrotXSTw5qutXtvfyhTq"
    "rLNbrJ8qwm4J8sgHoQ345r02wgtbSNduDNCRIrAdeRkfrXjfxIml0SLxXcxQ7oLmYGBCM723AM355P4Vs6tSclFOzbRhSo0aTlOo"
    "rxinoXrv44eCr/UbPXB4bvG1C1j/AHc0Lk+WMY+YDjH1q/4a+Ien+NLy6ksI7mG6kVp3Eo2pjhVCDtgAZ9TzXj/h7xO3g7wve20N"
    "mss1+vliV4uMY5579a0vhp4quLXVdNieOKOGFjCcDDMG6frj8q9zG0Y1oOSXvJf8E+Ty+rPDSUdoc3/AO28b3WreNtUtPDpuGtNO"
    "kAa5kzyyEn5R7na3P/1q7S/06wttJiisdXfTktIfKjihu9i8DjKZx+lY3irwra+NYI7N5ZbeK5WW3aaByjxhhuUhhyCCpH/Aq1fh"
    "B4esfhT4Ri8Oat4QsfEsFmzPHqc5UTzxElv3hIO5xwO39T5WFjGqveep9PiJ1Yv3VdeVl+ZwGsLdalIH1LxDsi+8oScREN6g5rD8"
    "QSadqmlRWcGpJLd2zCSC6W5Eskcg6HJJJ7g+or3LXfEngVI72XSvAGmxzGR5MThFLbo2XAwDgZOcDjvxXgeueBrXxB4svPGeqWFp"
    "baxKgtrOC1j2RW6ljjA7tliST/SrnSp01qwU68n8Djfu0dx8MfEGpXMdvcag21fL3uQeCF5J+hrl9V+NdjdWEOmatpjakkDtsldg"
    "pAJ/ix1PA5qXxD4qh0Xw/eCFfLjdUtIUBwRHjGPrtyfxrxG6uI73UHk8spEvAQdSK6Muopp1n30PKzSs5P2CejWp6JJ40YrZFQn2"
    "azk3rGUHoQc/ma53VvEkz60txAPLVpfNVgMYOa6nxFpmnWmiiUosco+dd/DOD7V5nfa0tmI3l6BlwD3JOAK9vld0t7ny9GcWm46W"
    "7n1+iGyvhb3SNbmQghW4MTHBwfow/Q11OsRPfaatrKpCkcsDiu++Ovwfa8tH1vSYzhxvuY0HKt1Mg9s8n069Onz9qfibxL4fsTHd"
    "6c+qWy/N59uNxA9x1H4Zr52tg54abg36eaPsMLjo4mmqi17+TI5PCa2d28qzNIAeAW6CsvxJC0ZgCo0txKRHBAgyzu3AAA6nGR+I"
    "rD0n4hap4r1cadoeh3F7qDthYdnCn1YnGB9a+p/g38Fl8KNH4i8TzRah4gUF1P8AywsgRyEz1OOrH8Mc56cLltfFy10XVmWMzahh"
    "Iaayey/rofLn7QHwiu/h2ngW1vLlX1TXLO4nntNwKwyxuuVH/AZYx35VscV41b2E41QK0GBC/wC8deQAKvftK/tHR/GD4+3uqafO"
    "ZPD2ix/2bpjL92VEJLzfR3Jx/shK56x8X/abKf7DcRxJcfJJFM4BDH05r6eeCVKKVFaI+RjjJ1m3VerP/9k="
)


def check_face() -> np.ndarray:
    """The face crop as a contiguous RGB uint8 array ``(64, 64, 3)``."""
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(_JPEG_B64))) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
