"""The registered attribution methods: importing a module registers its method.

One line per method; the registry orders them by ``paper_order``, not by this list.
"""

from magig_core.attribution.methods import agi as agi
from magig_core.attribution.methods import blur_ig as blur_ig
from magig_core.attribution.methods import eig as eig
from magig_core.attribution.methods import gi as gi
from magig_core.attribution.methods import gig as gig
from magig_core.attribution.methods import grad_cam as grad_cam
from magig_core.attribution.methods import grad_cam_plus_plus as grad_cam_plus_plus
from magig_core.attribution.methods import ig as ig
from magig_core.attribution.methods import ig2 as ig2
from magig_core.attribution.methods import ma_gig as ma_gig
from magig_core.attribution.methods import mig as mig
