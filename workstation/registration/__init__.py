"""Registration between image (LPS mm) and patient/robot space: paired-point rigid fits with
error predictions (FRE, Fitzpatrick-West TRE) and surface ICP."""
