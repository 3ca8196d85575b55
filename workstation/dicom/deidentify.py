"""De-identification of DICOM headers kept in a case (DICOM PS3.15 Annex E).

The approach is a whitelist, stricter than the Basic Application Level Confidentiality
Profile it implements: only technical attributes needed to describe and re-reference the
images are kept; every other attribute (names, IDs, birth date, addresses, institution,
physicians, free text, private tags) is removed. Dates are shifted by one random offset per
import (Retain Longitudinal Temporal Information with Modified Dates option) and instance
UIDs are re-mapped consistently, with empty UIDs given generated ones. What was removed is
reported by attribute keyword, never by value.
"""

from __future__ import annotations

import copy
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

# Attributes kept at the top level of a header (technical description of the image).
KEEP = frozenset([
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate", "SeriesDate",
    "AcquisitionDate", "ContentDate", "StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime",
    "AcquisitionDateTime", "Modality", "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
    "BodyPartExamined", "ScanOptions", "SliceThickness", "KVP", "DataCollectionDiameter",
    "ReconstructionDiameter", "DistanceSourceToDetector", "DistanceSourceToPatient", "GantryDetectorTilt",
    "TableHeight", "RotationDirection", "ExposureTime", "XRayTubeCurrent", "Exposure", "FilterType",
    "FocalSpots", "ConvolutionKernel", "PatientPosition", "SpiralPitchFactor", "CTDIvol", "RepetitionTime",
    "EchoTime", "InversionTime", "EchoNumbers", "MagneticFieldStrength", "EchoTrainLength", "FlipAngle",
    "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "ImagedNucleus", "NumberOfAverages",
    "ImagingFrequency", "PixelBandwidth", "ReceiveCoilName", "TransmitCoilName", "DiffusionBValue",
    "TriggerTime", "SpacingBetweenSlices", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "AcquisitionNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "FrameOfReferenceUID", "PositionReferenceIndicator", "SliceLocation", "TemporalPositionIdentifier",
    "NumberOfTemporalPositions", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows",
    "Columns", "PixelSpacing", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "WindowCenter",
    "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType", "LossyImageCompression",
    "LossyImageCompressionRatio", "LossyImageCompressionMethod", "DimensionOrganizationSequence",
    "DimensionIndexSequence", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
    "ContentQualification", "PatientSex", "PatientIdentityRemoved", "DeidentificationMethod",
    "DeidentificationMethodCodeSequence", "LongitudinalTemporalInformationModified",
])

# Value representations never kept inside kept sequences (person names, free text, unknown bytes).
DROP_VR_IN_SEQUENCES = frozenset({"PN", "LT", "ST", "UT", "UN", "OB", "OW", "UC"})
# Identifying attributes of the basic profile that can also sit inside sequences (removed there too).
PHI_KEYWORDS = frozenset({
    "AccessionNumber", "AdmittingDiagnosesDescription", "AdditionalPatientHistory", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "DeviceSerialNumber", "OperatorsName",
    "PerformingPhysicianName", "ReferringPhysicianName", "RequestingPhysician", "ScheduledPerformingPhysicianName",
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientAddress", "PatientTelephoneNumbers",
    "OtherPatientIDs", "OtherPatientNames", "OtherPatientIDsSequence", "PatientMotherBirthName", "MilitaryRank",
    "EthnicGroup", "Occupation", "MedicalRecordLocator", "StudyID", "RequestedProcedureID",
    "ScheduledProcedureStepID", "PerformedProcedureStepID", "RequestAttributesSequence", "StudyDescription",
    "SeriesDescription", "PerformedProcedureStepDescription", "ProtocolName", "ImageComments", "DerivationDescription",
    "ContentCreatorName", "PersonName", "VerifyingObserverName", "IssuerOfPatientID", "PatientAge", "PatientSize",
    "PatientWeight", "DeviceUID", "ReferencedPatientSequence", "CurrentPatientLocation", "PatientState",
    "InstitutionCodeSequence", "RegionOfResidence", "CountryOfResidence", "BranchOfService",
})
INSTANCE_UID_KEYWORDS = frozenset({
    "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "ReferencedSOPInstanceUID",
    "DimensionOrganizationUID", "ConcatenationUID", "IrradiationEventUID", "SynchronizationFrameOfReferenceUID",
    "ReferencedFrameOfReferenceUID", "MediaStorageSOPInstanceUID", "UID", "SourceFrameOfReferenceUID",
})


@dataclass
class Deidentifier:
    """De-identifies the headers of one import consistently (one date offset, one UID map).

    ``keep_phi=True`` keeps headers as they are (private tags and pixel data aside) and only
    fills empty UIDs.
    """

    keep_phi: bool = False
    date_offset_days: int = field(default_factory=lambda: -secrets.randbelow(3650) - 365)
    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    pseudonym: str = field(default_factory=lambda: "TWIN-" + secrets.token_hex(4).upper())
    removed: set[str] = field(default_factory=set)
    _uid_map: dict[str, str] = field(default_factory=dict)

    def uid(self, original: str, *, context: str) -> str:
        """The new UID for ``original``; an empty one gets a UID generated for ``context``."""
        key = original or f"empty:{context}"
        if self.keep_phi and original:
            return original
        if key not in self._uid_map:
            self._uid_map[key] = generate_uid(prefix=None, entropy_srcs=[self.salt, key])
        return self._uid_map[key]

    def _shift_date(self, value: str) -> str:
        try:
            day = dt.datetime.strptime(value[:8], "%Y%m%d")
        except ValueError:
            return ""
        return (day + dt.timedelta(days=self.date_offset_days)).strftime("%Y%m%d") + value[8:]

    def _clean_nested(self, ds: Dataset, uid_context: str) -> None:
        for elem in list(ds):
            keyword = elem.keyword or f"private {elem.tag}"
            if elem.tag.is_private or elem.VR in DROP_VR_IN_SEQUENCES or elem.keyword in PHI_KEYWORDS:
                self.removed.add(keyword)
                del ds[elem.tag]
            elif elem.VR == "SQ":
                for item in elem.value:
                    self._clean_nested(item, uid_context)
            elif elem.VR in ("DA", "DT") and elem.value:
                elem.value = self._shift_date(str(elem.value))
            elif elem.VR == "UI" and elem.keyword in INSTANCE_UID_KEYWORDS:
                elem.value = self.uid(str(elem.value or ""), context=f"{uid_context}:{elem.keyword}")

    def header(self, ds: Dataset, *, series_context: str, instance_context: str) -> Dataset:
        """A de-identified copy of ``ds`` without pixel data; ``ds`` is not modified.

        ``series_context`` and ``instance_context`` make generated UIDs consistent when the
        source's are empty (one series UID per series, one SOP instance UID per file).
        """
        out = Dataset()
        for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset converts every element, pixel data included
            if tag.group in (0x7FE0, 0x0002):
                continue  # pixel data (never read here) and file meta
            private = tag.is_private
            keyword = "" if private else keyword_for_tag(tag)
            if private or (not self.keep_phi and keyword not in KEEP):
                self.removed.add(keyword or ("private tags" if private else str(tag)))
                continue
            elem = ds[tag]
            # Copies, so that cleaning below never touches ``ds``; only sequences need a deep one.
            out.add(copy.deepcopy(elem) if elem.VR == "SQ" else DataElement(elem.tag, elem.VR, copy.copy(elem.value)))
        contexts = {"StudyInstanceUID": "study", "SeriesInstanceUID": series_context,
                    "FrameOfReferenceUID": f"{series_context}:for", "SOPInstanceUID": instance_context}
        for keyword, context in contexts.items():
            setattr(out, keyword, self.uid(str(ds.get(keyword, "") or ""), context=context))
        if self.keep_phi:
            return out
        for elem in list(out):
            if elem.VR == "SQ":
                for item in elem.value:
                    self._clean_nested(item, series_context)
            elif elem.VR in ("DA", "DT") and elem.value:
                elem.value = self._shift_date(str(elem.value))
        out.PatientName = ""
        out.PatientID = self.pseudonym
        out.PatientIdentityRemoved = "YES"
        out.LongitudinalTemporalInformationModified = "MODIFIED"
        out.DeidentificationMethod = "twin whitelist (PS3.15 basic profile, modified dates)"
        codes = Sequence()
        for value, meaning in (("113100", "Basic Application Confidentiality Profile"),
                               ("113107", "Retain Longitudinal Temporal Information Modified Dates Option")):
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            codes.append(item)
        out.DeidentificationMethodCodeSequence = codes
        return out

    def summary(self) -> dict[str, Any]:
        """What was done, without any value that could identify the patient."""
        return {
            "deidentified": not self.keep_phi,
            "method": "PHI kept on request (--keep-phi)" if self.keep_phi else
            "whitelist implementing DICOM PS3.15 basic profile with modified dates",
            "removed_attributes": sorted(self.removed),
            "dates_shifted": not self.keep_phi,
            "uids_remapped": not self.keep_phi,
        }


def header_to_json(ds: Dataset) -> dict[str, Any]:
    """DICOM JSON model (PS3.18 F) of a header without bulk data."""
    return ds.to_json_dict(bulk_data_threshold=1 << 30)
